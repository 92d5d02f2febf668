"""``export(name, format=...)``: one verb for every target format, as the CLI exposes it."""

from __future__ import annotations

import os
from typing import Any

from .errors import ExportOptionError
from .onnx import OnnxOptions, Progress, export_onnx
from .result import ExportResult

FORMATS = ("onnx", "tensorrt", "triton")


def export(
    name: str,
    format: str = "onnx",
    output: str | os.PathLike = "exported",
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    onnx: OnnxOptions = OnnxOptions(),
    tensorrt: Any = None,
    triton: Any = None,
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
    raise ExportOptionError(f"Unknown format '{format}'; choose one of: {', '.join(FORMATS)}")
