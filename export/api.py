"""``export(name, format=...)``: one verb for every target format, as the CLI exposes it."""

from __future__ import annotations

import os
from typing import Any

from .errors import ExportOptionError
from .onnx import OnnxOptions, Progress, export_onnx
from .result import ExportResult

FORMATS = ("onnx", "tensorrt", "triton", "openvino")
BATCH_FLAGS = ("--min-batch", "--opt-batch", "--max-batch")


def check_batch_options(format: str, min_batch: int | None, opt_batch: int | None, max_batch: int | None,
                        with_tensorrt: bool = False) -> None:
    """Refuse batch-profile flags that a format would ignore or that cannot be a batch size, before any work."""
    given = {flag: value for flag, value in zip(BATCH_FLAGS, (min_batch, opt_batch, max_batch)) if value is not None}
    for flag, value in given.items():
        if value < 1:
            raise ExportOptionError(f"{flag} must be >= 1, got {value} (a batch size; Triton's max_batch_size 0 "
                                    "means a static-batch export: use --static-batch)")
    if format in ("onnx", "openvino") and given:
        kind = "ONNX" if format == "onnx" else "OpenVINO"
        raise ExportOptionError(f"{', '.join(given)} only apply to --format tensorrt / triton; an {kind} export has "
                                "a dynamic batch axis (or --static-batch --batch-size N)")
    if format == "triton" and not with_tensorrt and ("--min-batch" in given or "--opt-batch" in given):
        raise ExportOptionError("--min-batch / --opt-batch are TensorRT profile settings; with --format triton "
                                "they apply only together with --with-tensorrt")


def export(
    name: str,
    format: str = "onnx",
    output: str | os.PathLike[str] = "exported",
    *,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = False,
    onnx: OnnxOptions = OnnxOptions(),
    tensorrt: Any = None,
    triton: Any = None,
    openvino: Any = None,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Export ``name`` to ``format`` under ``output``; see the per-format modules for what is written."""
    if format == "onnx":
        return export_onnx(name, output, onnx, weights=weights, pretrained=pretrained, force=force, progress=progress)
    if format == "tensorrt":
        from .tensorrt import TensorRTOptions, export_tensorrt

        return export_tensorrt(name, output, onnx, tensorrt or TensorRTOptions(), weights=weights,
                               pretrained=pretrained, force=force, progress=progress)
    if format == "triton":
        from .triton import TritonOptions, export_triton

        return export_triton(name, output, onnx, triton or TritonOptions(), tensorrt, weights=weights,
                             pretrained=pretrained, force=force, progress=progress)
    if format == "openvino":
        from .openvino import OpenVinoOptions, export_openvino

        return export_openvino(name, output, onnx, openvino or OpenVinoOptions(), weights=weights,
                               pretrained=pretrained, force=force, progress=progress)
    raise ExportOptionError(f"Unknown format '{format}'; choose one of: {', '.join(FORMATS)}")
