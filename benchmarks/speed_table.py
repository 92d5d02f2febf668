"""Reproduce the README's speed table: ``python benchmarks/speed_table.py > speed.md``.

Runs :func:`resnet_hub.tasks.benchmark.run_benchmark` for each model (timm's eager model of the same
architecture is measured in the same run as the baseline) and prints a markdown table, followed by the
conditions that make the numbers readable: CPU, threads, the measured GEMM ceilings and load average.
Progress goes to stderr so stdout is only the markdown.

Speed does not depend on the weights, accuracy does: with ``--digits-weights MODEL=FILE`` (weights made by
``resnet-hub finetune MODEL --data digits``) every runtime row (ONNX Runtime and OpenVINO, fp32 / fp16 / int8) also
carries the export's accuracy gate on the digits val split, PyTorch vs the artifact that backend runs, exported with
``resnet-hub export --format onnx|openvino`` (int8 calibrated on the digits train split). The table ends with the
benchmark's recommendation: the fastest backend that passed its gate.

Absolute numbers move with whatever else runs on the machine; the ratios, measured interleaved in one
process, are the part to compare across machines.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Any

from resnet_hub.tasks.benchmark import BenchmarkReport, run_benchmark

# backend -> (export format, precision) whose accuracy gate its row reports
GATED = {"onnxruntime": ("onnx", "fp32"), "onnxruntime-fp16": ("onnx", "fp16"), "onnxruntime-int8": ("onnx", "int8"),
         "openvino": ("openvino", "fp32"), "openvino-int8": ("openvino", "int8")}


def accuracy_gates(model: str, weights: str, backends: list[str], calib_limit: int = 256) -> dict[str, Any]:
    """The export's accuracy gate (PyTorch vs the artifact on the digits val split) per runtime backend."""
    from resnet_hub.export.api import export
    from resnet_hub.export.onnx import OnnxOptions

    gates = {}
    for backend in backends:
        if backend not in GATED:
            continue
        fmt, precision = GATED[backend]
        print(f"{model}: accuracy gate of {backend} ({fmt} {precision}) on digits", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            options = OnnxOptions(precision=precision, eval_data="digits", calib_limit=calib_limit,
                                  calib_data="digits" if precision == "int8" else None)
            result = export(model, fmt, f"{tmp}/out", onnx=options, weights=weights)
        gates[backend] = result.accuracy[0]
    return gates


def markdown(reports: list[BenchmarkReport], gates: dict[str, dict[str, Any]] | None = None) -> str:
    gates = gates or {}
    lines = [
        "| model | backend | median ms | p90 ms | img/s | vs timm eager | % of ceiling | top-1 vs PyTorch (digits) "
        "| max abs diff | setup s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        for r in report.results:
            if not r.available:
                lines.append(f"| {report.model} | {r.backend} | - | - | - | unavailable | - | - | - | - |")
                continue
            ceiling = (f"{100 * r.ceiling_fraction:.0f}% of {r.arithmetic}" if r.ceiling_fraction is not None
                       else "-")
            gate = gates.get(report.model, {}).get(r.backend)
            accuracy = (f"{100 * gate.artifact_top1:.2f}% ({gate.delta_top1:+.2f} pt)" if gate is not None else "-")
            diff = f"{r.max_abs_diff:.1e}" if r.max_abs_diff is not None else "-"
            name = f"{r.backend} (baseline)" if r.is_baseline else r.backend
            lines.append(
                f"| {report.model} | {name} | {r.median_ms:.1f} | {r.p90_ms:.1f} | {r.throughput:.2f} | "
                f"{r.speedup:.2f}x | {ceiling} | {accuracy} | {diff} | {r.setup_s:.1f} |"
            )
    first = reports[0]
    notes = [
        "",
        f"Batch {first.batch_size}, {first.img_size}px, {first.device}, {first.threads} threads, "
        f"{first.warmup} warm-up calls, {first.iters} interleaved timed rounds per backend.",
        f"CPU: {first.environment.get('cpu', '?')}, ISA: {first.environment.get('isa', '?')}; "
        f"torch {first.environment['torch']}, timm {first.environment['timm']}, "
        f"onnxruntime {first.environment.get('onnxruntime', 'not installed')}, "
        f"openvino {first.environment.get('openvino', 'not installed')}.",
    ]
    for report in reports:
        notes.append(f"{report.model}: {report.gflops_per_image:.2f} GFLOP/image; baseline: {report.baseline_note}; "
                     f"load average {report.environment['load_average']} -> "
                     f"{report.environment.get('load_average_end', '?')}.")
    for report in reports:
        for ceiling in report.ceilings.values():
            notes.append(f"{report.model}: {ceiling.describe()}.")
    for model, by_backend in gates.items():
        for backend, gate in by_backend.items():
            notes.append(f"{model} {backend} accuracy gate: {gate.describe()}.")
    for r in first.results:
        if r.available:
            notes.append(f"- {r.backend}: {r.description}")
    for report in reports:
        notes.extend(f"- note ({report.model}): {note}" for note in report.notes)
    for report in reports:
        notes.append(f"{report.model} {report.recommendation}")
    return "\n".join(lines + notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="myresnet50", help="comma-separated variants")
    parser.add_argument("--backends", default="torch,torch-optimized,onnxruntime,onnxruntime-int8,openvino,"
                                              "openvino-int8")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="add torch.compile to torch-optimized")
    parser.add_argument("--peak-gflops", type=float, default=None)
    parser.add_argument("--calib-data", default=None, help="int8 backends' calibration images (default digits)")
    parser.add_argument("--gate-calib-limit", type=int, default=256,
                        help="calibration images of the digits int8 exports behind the accuracy column")
    parser.add_argument("--digits-weights", default="",
                        help="MODEL=FILE[,MODEL=FILE]: digits-fine-tuned weights for the accuracy column")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    gates: dict[str, dict[str, Any]] = {}
    for pair in filter(None, args.digits_weights.split(",")):
        model, _, weights = pair.partition("=")
        print(f"{model}: accuracy gates on digits with {weights}", file=sys.stderr)
        gates[model.strip()] = accuracy_gates(model.strip(), weights.strip(), backends, args.gate_calib_limit)
    reports = []
    for model in args.models.split(","):
        reports.append(run_benchmark(
            model.strip(), args.backends, batch_size=args.batch_size, img_size=args.img_size,
            warmup=args.warmup, iters=args.iters, threads=args.threads, compile=args.compile,
            peak_gflops=args.peak_gflops, calib_data=args.calib_data,
            progress=lambda m, model=model: print(f"{model}: {m}", file=sys.stderr),
        ))
    print(markdown(reports, gates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
