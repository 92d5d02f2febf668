"""Reproduce the README's speed table: ``python benchmarks/speed_table.py > speed.md``.

Runs :func:`resnet_hub.benchmark.run_benchmark` for each model (timm's eager model of the same
architecture is measured in the same run as the baseline) and prints a markdown table, followed by the
conditions that make the numbers readable: CPU, threads, peak assumption and load average. Progress
goes to stderr so stdout is only the markdown.

Absolute numbers move with whatever else runs on the machine; the ratios, measured interleaved in one
process, are the part to compare across machines.
"""

from __future__ import annotations

import argparse
import sys

from resnet_hub.benchmark import BenchmarkReport, run_benchmark


def markdown(reports: list[BenchmarkReport]) -> str:
    lines = [
        "| model | backend | median ms | p90 ms | img/s | vs timm eager | % of peak | max abs diff | setup s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        for r in report.results:
            if not r.available:
                lines.append(f"| {report.model} | {r.backend} | - | - | - | unavailable | - | - | - |")
                continue
            peak = f"{100 * r.peak_fraction:.1f}%" if r.peak_fraction is not None else "-"
            diff = f"{r.max_abs_diff:.1e}" if r.max_abs_diff is not None else "-"
            name = f"{r.backend} (baseline)" if r.is_baseline else r.backend
            lines.append(
                f"| {report.model} | {name} | {r.median_ms:.1f} | {r.p90_ms:.1f} | {r.throughput:.2f} | "
                f"{r.speedup:.2f}x | {peak} | {diff} | {r.setup_s:.1f} |"
            )
    first = reports[0]
    notes = [
        "",
        f"Batch {first.batch_size}, {first.img_size}px, {first.device}, {first.threads} threads, "
        f"{first.warmup} warm-up calls, {first.iters} interleaved timed rounds per backend.",
        f"CPU: {first.environment.get('cpu', '?')}; torch {first.environment['torch']}, "
        f"timm {first.environment['timm']}, onnxruntime {first.environment.get('onnxruntime', 'not installed')}.",
    ]
    for report in reports:
        notes.append(f"{report.model}: {report.gflops_per_image:.2f} GFLOP/image; baseline: {report.baseline_note}; "
                     f"load average {report.environment['load_average']} -> "
                     f"{report.environment.get('load_average_end', '?')}.")
    if first.peak is not None:
        notes.append(f"Peak {first.peak.gflops:.0f} GFLOP/s: {first.peak.assumption}")
    for r in first.results:
        if r.available:
            notes.append(f"- {r.backend}: {r.description}")
    for report in reports:
        notes.extend(f"- note ({report.model}): {note}" for note in report.notes)
    return "\n".join(lines + notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="myresnet50", help="comma-separated variants")
    parser.add_argument("--backends", default="torch,torch-optimized,onnxruntime")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="add torch.compile to torch-optimized")
    parser.add_argument("--peak-gflops", type=float, default=None)
    args = parser.parse_args(argv)
    reports = []
    for model in args.models.split(","):
        reports.append(run_benchmark(
            model.strip(), args.backends, batch_size=args.batch_size, img_size=args.img_size,
            warmup=args.warmup, iters=args.iters, threads=args.threads, compile=args.compile,
            peak_gflops=args.peak_gflops, progress=lambda m, model=model: print(f"{model}: {m}", file=sys.stderr),
        ))
    print(markdown(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
