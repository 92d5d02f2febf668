"""INT8 Q/DQ graphs for TensorRT, made with NVIDIA ModelOpt: the explicit quantization TensorRT 10 prefers and
TensorRT 11 requires (the ONNX Runtime int8 graph for CPUs is ``int8_onnxruntime.py``).

``modelopt.onnx.quantization.quantize`` calibrates activation ranges by running the fp32 graph in ONNX
Runtime (the CPU provider is enough) and writes a graph with QuantizeLinear/DequantizeLinear pairs that
TensorRT turns into INT8 kernels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from resnet_hub.errors import MissingDependencyError

from .calibration_array import check_calibration_array
from .errors import ExportError
from .graph_ops import qdq_counts

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
    """Write a Q/DQ INT8 copy of ``onnx_path`` calibrated on ``calibration``: what the graph takes, a (N, C, H, W)
    float batch, or (N, H, W, 3) uint8 pixels for a graph with embedded preprocessing (kept uint8: ModelOpt
    feeds the array to ONNX Runtime as it is)."""
    if method not in CALIBRATION_METHODS:
        raise ExportError(f"Unknown calibration method '{method}'; choose one of: {', '.join(CALIBRATION_METHODS)}")
    feed = check_calibration_array(calibration)
    import_modelopt_quantize()  # a missing extra is reported here, in the caller's terms
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="resnet-hub-calibration-") as tmp:
        calibration_file = Path(tmp) / "calibration.npy"
        np.save(calibration_file, feed)
        # In a child process: ModelOpt leaves ONNX Runtime's quantization modules patched (see _modelopt_worker).
        proc = subprocess.run([sys.executable, "-m", "resnet_hub.export._modelopt_worker", str(onnx_path),
                               str(output_path), str(calibration_file), method, ",".join(execution_providers)],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        reason = "\n".join(proc.stderr.strip().splitlines()[-6:]) or f"exit status {proc.returncode}"
        raise ExportError(f"ModelOpt could not quantize {Path(onnx_path).name} to INT8 Q/DQ:\n{reason}")
    if not output_path.is_file():
        raise ExportError(f"ModelOpt did not write {output_path}")
    return output_path


def count_qdq_nodes(path: str | os.PathLike) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes a graph has (0 means nothing will run in INT8)."""
    return qdq_counts(path)
