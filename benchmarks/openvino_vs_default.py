"""Our OpenVINO int8 against what a user would build by hand, in one interleaved run:
``python benchmarks/openvino_vs_default.py [--model myresnet50] [--batch-size 8] [--threads 2] [--rounds 15]``.

Backends, all on the same input and threads (ratios to timm's eager fp32 model, timed interleaved so load hits all
alike; the CPU's ISA is printed with them, a figure means nothing without it):

- ``timm-eager``: the baseline.
- ``ort-int8``: our ONNX int8 export (ONNX Runtime QDQ).
- ``ov-fp32`` / ``ov-fp32-bf16``: our OpenVINO fp32 IR with ``INFERENCE_PRECISION_HINT`` f32 (what we ship) and with
  the CPU plugin's own choice (bf16 on avx512_bf16 / AMX CPUs).
- ``ov-int8-default``: by hand, as the OpenVINO / NNCF docs show it: ``nncf.quantize(core.read_model(our.onnx),
  nncf.Dataset(images))`` with every default, compiled with ``{"INFERENCE_NUM_THREADS": T, "PERFORMANCE_HINT":
  "LATENCY"}`` (threads pinned, the plugin's default).
- ``ov-int8``: ours (``export/int8_openvino.py``: MINMAX activation ranges, all calibration images; compiled with
  f32 hint, LATENCY, T threads, unpinned) and the variants tried: pinned, ``THROUGHPUT`` hint, ``MIXED`` preset,
  full bias correction, and ONNX Runtime int8 with ``reduce_range`` (``--variants``).

Accuracy is printed beside speed: top-1 agreement with PyTorch on the calibration source's held-out images. The
goal (issue 18): ov-int8 >= 1.0x ov-int8-default, the best CPU artifact >= 6x timm eager at ResNet-50 batch 8 on 2
threads, and <= 1 point top-1 drop on digits (the export's gate; ``benchmarks/speed_table.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="myresnet50")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calib-limit", type=int, default=64)
    parser.add_argument("--variants", action="store_true", help="also time the tuning variants of our int8")
    args = parser.parse_args(argv)

    import nncf
    import openvino as ov
    import timm

    import resnet_hub
    from resnet_hub.tasks.benchmark.backend_onnxruntime import ort_session_options
    from resnet_hub.cpu import isa_summary
    from resnet_hub.export.calibration import load_calibration
    from resnet_hub.export.int8_onnxruntime import quantize_for_cpu
    from resnet_hub.export.int8_openvino import quantize_openvino
    from resnet_hub.export.onnx import export_onnx_model
    from resnet_hub.export.openvino_runtime import OpenVinoConfig, compile_openvino, inference_precision

    torch.set_num_threads(args.threads)
    log(f"CPU ISA: {isa_summary()}; {args.threads} threads; load average {' '.join(map(str, _load()))}")
    model = resnet_hub.create_model(args.model).eval()
    # Input-sensitive weights: random BatchNorm statistics so int8 errors show up in the logits (a fresh model's
    # BatchNorm is the identity and every image gives nearly the same logits).
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
    peer_name = resnet_hub.get_variant(args.model).timm_name
    peer = timm.create_model(peer_name, num_classes=model.num_classes).eval()
    peer.load_state_dict(model.state_dict())
    from resnet_hub.zoo.model_loading import load_model

    data_config = load_model(args.model).data_config(args.img_size)
    images, count, _ = load_calibration("digits", data_config, limit=args.calib_limit + 32)
    calibration, held_out = images[:args.calib_limit], images[args.calib_limit:]
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, generator=generator).numpy()
    with torch.inference_mode():
        reference = model(torch.from_numpy(held_out)).numpy()

    runners: dict = {}
    notes: dict[str, str] = {}
    accuracy: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log("exporting ONNX (fp32, and int8 with ONNX Runtime)")
        onnx_path = export_onnx_model(model, Path(tmp) / "m.onnx", input_shape=tuple(x.shape))
        quantize_for_cpu(onnx_path, Path(tmp) / "int8.onnx", calibration)
        import onnxruntime as ort

        session = ort.InferenceSession(str(Path(tmp) / "int8.onnx"), ort_session_options(args.threads),
                                       providers=["CPUExecutionProvider"])
        runners["ort-int8"] = lambda feed: session.run(None, {"input": feed})[0]
        if args.variants:  # ONNX Runtime's 7-bit weights, its advice for CPUs without VNNI
            record = quantize_for_cpu(onnx_path, Path(tmp) / "int8-rr.onnx", calibration, reduce_range=True)
            notes["ort-int8-reduce-range"] = f"reduce_range={record.reduce_range}"
            rr = ort.InferenceSession(str(Path(tmp) / "int8-rr.onnx"), ort_session_options(args.threads),
                                      providers=["CPUExecutionProvider"])
            runners["ort-int8-reduce-range"] = lambda feed: rr.run(None, {"input": feed})[0]
        core = ov.Core()
        fp32 = ov.convert_model(str(onnx_path))
        t = time.perf_counter()
        log("ov-int8-default: nncf.quantize with defaults")
        default = nncf.quantize(core.read_model(str(onnx_path)),
                                nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))]))
        notes["ov-int8-default"] = f"NNCF defaults, quantized in {time.perf_counter() - t:.0f}s"
        compiled_default = core.compile_model(default, "CPU", {"INFERENCE_NUM_THREADS": args.threads,
                                                               "PERFORMANCE_HINT": "LATENCY"})
        notes["ov-int8-default"] += f", runs {inference_precision(compiled_default)} + int8"
        runners["ov-int8-default"] = _ov(compiled_default)
        t = time.perf_counter()
        log("ov-int8: ours")
        ours, record = quantize_openvino(ov.convert_model(str(onnx_path)), calibration)
        notes["ov-int8"] = f"ours ({record.range_estimator}), quantized in {time.perf_counter() - t:.0f}s"
        mine = OpenVinoConfig(precision_hint="f32", performance_hint="LATENCY", threads=args.threads, pinning=False)
        runners["ov-int8"] = _ov(compile_openvino(ours, mine))
        runners["ov-fp32"] = _ov(compile_openvino(fp32, mine))
        bf16 = core.compile_model(fp32, "CPU", {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"})
        notes["ov-fp32-bf16"] = f"plugin default precision: {inference_precision(bf16)}"
        runners["ov-fp32-bf16"] = _ov(bf16)
        if args.variants:
            from dataclasses import replace

            runners["ov-int8-pinned"] = _ov(compile_openvino(ours, replace(mine, pinning=True)))
            runners["ov-int8-throughput"] = _ov(compile_openvino(ours, replace(mine, performance_hint="THROUGHPUT")))
            runners["ov-int8-bf16"] = _ov(compile_openvino(ours, replace(mine, precision_hint="bf16")))
            mixed, _ = quantize_openvino(ov.convert_model(str(onnx_path)), calibration, preset="mixed")
            runners["ov-int8-mixed"] = _ov(compile_openvino(mixed, mine))
            slow, _ = quantize_openvino(ov.convert_model(str(onnx_path)), calibration, fast_bias_correction=False)
            runners["ov-int8-full-bias"] = _ov(compile_openvino(slow, mine))
        for name, run in runners.items():
            out = run(held_out)
            accuracy[name] = float((out.argmax(1) == reference.argmax(1)).mean())
        runners = {"timm-eager": lambda feed: peer(torch.from_numpy(feed)), **runners}
        samples: dict[str, list[float]] = {name: [] for name in runners}
        names = list(runners)
        for name in names:  # warm-up
            with torch.inference_mode():
                runners[name](x)
        for round_ in range(args.rounds):
            order = names[round_ % len(names):] + names[:round_ % len(names)]
            for name in order:
                start = time.perf_counter()
                with torch.inference_mode():
                    runners[name](x)
                samples[name].append(time.perf_counter() - start)
            log(f"round {round_ + 1}/{args.rounds}")
    base = statistics.median(samples["timm-eager"])
    default_ms = statistics.median(samples["ov-int8-default"])
    print(f"{args.model}, batch {args.batch_size}, {args.img_size}px, {args.threads} threads, {args.rounds} "
          f"interleaved rounds; CPU ISA: {isa_summary()}; load average {' '.join(map(str, _load()))}")
    print("| backend | median ms | img/s | vs timm eager | vs ov-int8-default | top-1 agreement (held-out digits) | "
          "note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in names:
        median = statistics.median(samples[name])
        print(f"| {name} | {median * 1000:.1f} | {args.batch_size / median:.1f} | {base / median:.2f}x | "
              f"{default_ms / median:.2f}x | {accuracy.get(name, 1.0):.3f} | {notes.get(name, '')} |")
    return 0


def _ov(compiled):
    request = compiled.create_infer_request()

    def run(feed: np.ndarray) -> np.ndarray:
        return np.array(request.infer({0: np.ascontiguousarray(feed, dtype=np.float32)})[0], copy=True)

    return run


def _load() -> tuple[float, ...]:
    import os

    return tuple(round(v, 1) for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
