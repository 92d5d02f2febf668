"""INT8 Q/DQ graphs with NVIDIA ModelOpt, the explicit quantization TensorRT 10 prefers and TensorRT 11 requires.

``modelopt.onnx.quantization.quantize`` calibrates activation ranges by running the fp32 graph in ONNX
Runtime (the CPU provider is enough) and writes a graph with QuantizeLinear/DequantizeLinear pairs that
TensorRT turns into INT8 kernels.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

import numpy as np

from resnet_hub.errors import MissingDependencyError

from .errors import ExportError

CALIBRATION_METHODS = ("entropy", "max")


def import_modelopt_quantize():
    """``modelopt.onnx.quantization.quantize``, or a MissingDependencyError naming the extra to install."""
    try:
        from modelopt.onnx.quantization import quantize
    except ImportError as exc:
        raise MissingDependencyError("nvidia-modelopt", "quantize", "INT8 quantization (Q/DQ insertion)") from exc
    return quantize


def quantize_int8(
    onnx_path: str | os.PathLike,
    output_path: str | os.PathLike,
    calibration: np.ndarray,
    *,
    method: str = "entropy",
    execution_providers: tuple[str, ...] = ("cpu",),
) -> Path:
    """Write a Q/DQ INT8 copy of ``onnx_path`` calibrated on ``calibration`` (N, C, H, W float32)."""
    if method not in CALIBRATION_METHODS:
        raise ExportError(f"Unknown calibration method '{method}'; choose one of: {', '.join(CALIBRATION_METHODS)}")
    if calibration.ndim != 4 or calibration.shape[0] < 1:
        raise ExportError(f"Calibration data must be a non-empty (N, C, H, W) array, got {calibration.shape}")
    quantize = import_modelopt_quantize()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("modelopt")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize(
                onnx_path=str(onnx_path),
                quantize_mode="int8",
                calibration_data=calibration.astype(np.float32),
                calibration_method=method,
                calibration_eps=list(execution_providers),
                output_path=str(output_path),
                log_level="ERROR",
            )
    finally:
        logger.setLevel(previous)
    if not output_path.is_file():
        raise ExportError(f"ModelOpt did not write {output_path}")
    return output_path


def count_qdq_nodes(path: str | os.PathLike) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes a graph has (0 means nothing will run in INT8)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    kinds = ("QuantizeLinear", "DequantizeLinear")
    return {k: sum(1 for n in model.graph.node if n.op_type == k) for k in kinds}
