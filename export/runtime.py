"""Running an exported artifact as a logits function, the way evaluation and the accuracy gate need it (the
runners; :mod:`export.directory` picks one per format).

Every runner takes the same input, a float (N, C, H, W) batch after timm's evaluation transform, so a PyTorch
model and its exports are scored on identical tensors. A graph with preprocessing embedded takes decoded uint8
NHWC pixels instead; its runner undoes the normalisation (exact: timm's transform is uint8 -> /255 -> (x-mean)/std)
so it still receives the same pixels.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np


def ort_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session with all graph optimisations (what users run): the one session factory of the
    export layer (verification, the accuracy gate, ``verify``, evaluate and the Ray workers all open graphs here)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def to_uint8_nhwc(x: Any, mean, std) -> np.ndarray:
    """Invert timm's ToTensor + Normalize: the decoded 8-bit pixels a client would send, NHWC."""
    array = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    pixels = (array * np.asarray(std).reshape(1, -1, 1, 1) + np.asarray(mean).reshape(1, -1, 1, 1)) * 255.0
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def runtime_input(x: Any, embedded_preprocessing: bool, data_config: dict[str, Any] | None) -> np.ndarray:
    """What an artifact is fed for the normalised float batch ``x``: ``x`` as float32, or for a graph with
    embedded preprocessing its uint8 NHWC pixels (which need the data config's mean and std)."""
    if not embedded_preprocessing:
        return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
    if data_config is None:
        raise ValueError("a graph with embedded preprocessing needs the data config to rebuild its uint8 input")
    return to_uint8_nhwc(x, data_config["mean"], data_config["std"])


def onnx_logits(
    path: str | os.PathLike,
    *,
    embedded_preprocessing: bool = False,
    data_config: dict[str, Any] | None = None,
    input_name: str | None = None,
    threads: int | None = None,
) -> Callable[[Any], np.ndarray]:
    if embedded_preprocessing and data_config is None:
        raise ValueError("a graph with embedded preprocessing needs the data config to rebuild its uint8 input")
    session = ort_session(path, threads)
    name = input_name or session.get_inputs()[0].name

    def run(x: Any) -> np.ndarray:
        return session.run(None, {name: runtime_input(x, embedded_preprocessing, data_config)})[0]

    return run


def engine_logits(
    module: Any,
    *,
    embedded_preprocessing: bool = False,
    data_config: dict[str, Any] | None = None,
) -> Callable[[Any], np.ndarray]:
    """A TensorRT engine (a ``TensorRTModule``) as a logits function of the normalised float batch, like
    :func:`onnx_logits`: an engine with embedded preprocessing is fed the uint8 NHWC pixels of that batch."""
    import torch

    if embedded_preprocessing and data_config is None:
        raise ValueError("an engine with embedded preprocessing needs the data config to rebuild its uint8 input")
    device = torch.device("cuda", torch.cuda.current_device())

    def run(x: Any) -> np.ndarray:
        feed = torch.from_numpy(runtime_input(x, embedded_preprocessing, data_config))
        with torch.inference_mode():
            return module(feed.to(device)).float().cpu().numpy()

    return run
