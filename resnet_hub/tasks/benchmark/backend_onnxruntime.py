"""ONNX Runtime backends: the fp32, fp16 and int8 graphs ``resnet-hub export --format onnx`` writes, each in a
session created once with the benchmark's threads.

Tried for int8 on CPUs (``export/int8_onnxruntime.py`` records the rest): ``reduce_range`` (7-bit weights) is what ONNX
Runtime recommends without VNNI, where u8 x s8 products go through ``vpmaddubsw`` and can saturate; with VNNI it only
costs accuracy, so ``reduce_range="auto"`` (decided by the CPU) is what the backend runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from ...errors import MissingDependencyError
from .common import Calibration, Runner, Unavailable, calibration_images


def ort_session_options(threads: int):
    """Session options of every ONNX Runtime backend: all graph optimisations, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # ORT's pool otherwise keeps spinning after run() returns, stealing the cores from whichever backend
    # is timed next; a benchmark that interleaves backends must not let one slow the others.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def require_onnx_export(name: str) -> None:
    """The ONNX exporter (onnx, onnxscript) and its package; Unavailable with the extra to install otherwise."""
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError as exc:
            raise Unavailable(str(MissingDependencyError(module, "onnx", f"Exporting to ONNX for {name}"))) from exc
    try:
        from resnet_hub.export.onnx import export_onnx_model  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"ONNX export is not available in this install (resnet_hub.export.onnx: {exc})") from exc


def fp32_graph(model: nn.Module, x: torch.Tensor, path: Path) -> Path:
    """The fp32 graph the ONNX export writes (dynamo, opset 20, BatchNorm folded, dynamic batch)."""
    from resnet_hub.export.onnx import export_onnx_model

    shape = cast("tuple[int, int, int, int]", tuple(x.shape))  # an NCHW batch
    return export_onnx_model(model.cpu(), path, input_shape=shape, dynamic_batch=True, opset=20,
                             exporter="dynamo", single_file=True)


def onnxruntime_runner(
    model: nn.Module, x: torch.Tensor, threads: int, device: torch.device, workdir: Path,
    precision: str = "fp32", calibration: Calibration | None = None,
) -> Runner:
    """A session over the ONNX file users deploy: fp32 (BatchNorm folded), fp16 (``--precision fp16``'s graph)
    or int8 (``--precision int8``'s QDQ graph, calibrated on real images), created once."""
    name = "onnxruntime" if precision == "fp32" else f"onnxruntime-{precision}"
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Unavailable(str(MissingDependencyError("onnxruntime", "onnx", f"The {name} backend"))) from exc
    require_onnx_export(name)
    from resnet_hub.export.onnx import export_onnx_model

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if precision == "int8":
            raise Unavailable("onnxruntime-int8 is the QDQ graph for ONNX Runtime's CPU provider; run it with "
                              "--device cpu")
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise Unavailable("onnxruntime has no CUDAExecutionProvider here; install onnxruntime-gpu for --device "
                              "cuda")
        providers.insert(0, "CUDAExecutionProvider")
    calibrated = ""
    if precision == "int8":
        path, calibrated = _int8_graph(model, x, workdir, calibration)
    else:
        path = export_onnx_model(model.cpu() if device.type != "cpu" else model, workdir / f"{name}.onnx",
                                 input_shape=cast("tuple[int, int, int, int]", tuple(x.shape)),  # NCHW
                                 dynamic_batch=True, opset=20, exporter="dynamo", single_file=True,
                                 half=precision == "fp16")
    if device.type != "cpu":
        model.to(device)
    session = ort.InferenceSession(str(path), sess_options=ort_session_options(threads), providers=providers)
    input_name = session.get_inputs()[0].name
    feed = {input_name: x.detach().cpu().numpy()}

    def call() -> torch.Tensor:
        return torch.from_numpy(session.run(None, feed)[0])

    def logits(batch: torch.Tensor) -> np.ndarray:
        return session.run(None, {input_name: batch.detach().cpu().numpy().astype(np.float32)})[0]

    graph = {"fp32": "fp32 graph, BatchNorm folded", "fp16": "fp16 graph with fp32 inputs/outputs",
             "int8": f"int8 QDQ graph{calibrated}"}[precision]
    return Runner(
        name,
        f"ONNX Runtime {ort.__version__} ({providers[0]}, {graph}, dynamo export opset 20, graph optimisation ALL, "
        f"{threads} intra-op threads)",
        call,
        arithmetic="int8" if precision == "int8" else ("gpu" if device.type == "cuda" else "fp32"),
        precision=precision,
        logits=logits,
    )


def _int8_graph(model: nn.Module, x: torch.Tensor, workdir: Path, calibration: Calibration | None
                ) -> tuple[Path, str]:
    """The graph ``resnet-hub export --precision int8`` writes, calibrated on real images; (path, description)."""
    from resnet_hub.export.int8_onnxruntime import quantize_for_cpu

    images, count = calibration_images(calibration, "onnxruntime-int8")
    fp32 = fp32_graph(model, x, workdir / "int8-source.onnx")
    record = quantize_for_cpu(fp32, workdir / "onnxruntime-int8.onnx", images,
                              calibration_source=str(calibration.source))  # type: ignore[union-attr]
    fused = sum(v for k, v in record.quantized_ops.items() if k != "QuantizeLinear")
    return workdir / "onnxruntime-int8.onnx", (
        f" (per-channel int8 weights, uint8 activations, reduce_range={record.reduce_range}, {fused} ops "
        f"quantized), calibrated on {count} images from '{calibration.source}'")  # type: ignore[union-attr]
