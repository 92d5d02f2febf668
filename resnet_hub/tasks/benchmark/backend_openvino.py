"""OpenVINO backends (CPU): the IR ``resnet-hub export --format openvino`` writes, fp32 and NNCF int8, compiled once
with the benchmark's threads and an explicit precision hint.

Compile settings, and why (measured with ``benchmarks/openvino_vs_default.py``, which also times a by-hand
OpenVINO + NNCF-defaults int8 in the same interleaved run; figures in the README's speed section):

- ``INFERENCE_PRECISION_HINT: f32``: without it the CPU plugin computes the fp32 model in bf16 on avx512_bf16 / AMX
  CPUs (about 2x faster there, and a different precision from the one the export verified). The int8 model's
  quantized ops are integer either way.
- ``PERFORMANCE_HINT: LATENCY`` (one stream, all threads on one request): the benchmark times one request at a
  time, as the other backends; ``THROUGHPUT`` only pays with several requests in flight.
- ``INFERENCE_NUM_THREADS``: the benchmark's thread count, like torch's and ONNX Runtime's.
- ``ENABLE_CPU_PINNING: False``: the plugin pins its threads to cores by default; on a shared, busy machine a pinned
  thread waits for its core, which is the run-to-run spread seen under load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...errors import MissingDependencyError
from .backend_onnxruntime import fp32_graph, require_onnx_export
from .common import Calibration, Runner, Unavailable, calibration_images


def openvino_runner(model: nn.Module, x: torch.Tensor, threads: int, device: torch.device, workdir: Path,
                    precision: str = "fp32", calibration: Calibration | None = None) -> Runner:
    """The fp32 or int8 IR built from our ONNX graph, compiled for the CPU."""
    name = "openvino" if precision == "fp32" else f"openvino-{precision}"
    if device.type != "cpu":
        raise Unavailable(f"{name} runs on the CPU plugin; run it with --device cpu")
    try:
        import openvino as ov
    except ImportError as exc:
        raise Unavailable(str(MissingDependencyError("openvino", "openvino", f"The {name} backend"))) from exc
    require_onnx_export(name)
    from resnet_hub.export.openvino_runtime import OpenVinoConfig, compile_openvino, inference_precision

    ir = ov.convert_model(str(fp32_graph(model, x, workdir / f"{name}-source.onnx")))
    detail = "fp32 IR from our ONNX graph"
    if precision == "int8":
        try:
            from resnet_hub.export.int8_openvino import quantize_openvino
        except ImportError as exc:
            raise Unavailable(str(MissingDependencyError("nncf", "openvino", f"The {name} backend"))) from exc
        images, count = calibration_images(calibration, name)
        ir, record = quantize_openvino(ir, images, calibration_source=str(calibration.source))  # type: ignore
        detail = (f"NNCF int8 ({record.preset} preset, {record.range_estimator} activation ranges, "
                  f"{record.quantized_ops.get('FakeQuantize', 0)} FakeQuantize), calibrated on {count} images from "
                  f"'{calibration.source}'")  # type: ignore[union-attr]
    config = OpenVinoConfig(precision_hint="f32", performance_hint="LATENCY", threads=threads, pinning=False)
    compiled = compile_openvino(ir, config)
    request = compiled.create_infer_request()
    feed = x.detach().cpu().numpy()

    def call() -> torch.Tensor:
        return torch.from_numpy(np.array(request.infer({0: feed}, share_inputs=True)[0], copy=True))

    gate_request = compiled.create_infer_request()  # its own request: the timed one holds the benchmark batch

    def logits(batch: torch.Tensor) -> np.ndarray:
        feed = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return np.array(gate_request.infer({0: feed}, share_inputs=True)[0], copy=True)

    runs = inference_precision(compiled)
    return Runner(name, f"OpenVINO {ov.get_version().split('-')[0]} CPU ({detail}; {runs} arithmetic, "
                  f"INFERENCE_PRECISION_HINT f32, LATENCY, {threads} threads, unpinned)", call,
                  arithmetic="int8" if precision == "int8" else "fp32", precision=precision, logits=logits)
