"""TensorRT backend: an fp32 engine for exactly the benchmark's batch size (GPU only)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from torch import nn

from ...errors import install_hint
from .common import Runner, Unavailable, torch_call


def tensorrt_runner(model: nn.Module, x: torch.Tensor, device: torch.device, workdir: Path) -> Runner:
    """An fp32 engine for exactly this batch size, built through ``export`` (which owns engine building)."""
    hint = f"on a machine with an NVIDIA GPU. {install_hint('tensorrt')}"
    if device.type != "cuda":
        raise Unavailable(f"TensorRT needs an NVIDIA GPU: run with --device cuda on a machine with CUDA ({hint})")
    try:
        import tensorrt
    except ImportError as exc:
        raise Unavailable(f"the 'tensorrt' package is not installed; {hint}") from exc
    try:
        from resnet_hub.export.tensorrt import TensorRTModule, benchmark_engine, cuda_environment
    except ImportError as exc:
        raise Unavailable(f"TensorRT export is not available in this install (resnet_hub.export.tensorrt: {exc})"
                          ) from exc
    batch = int(x.shape[0])
    here = cuda_environment(tensorrt, device)
    shape = cast("tuple[int, int, int, int]", tuple(x.shape))  # an NCHW batch
    engine_bytes, _plan = benchmark_engine(model.cpu(), shape, workdir, here)
    model.to(device)
    engine = TensorRTModule(engine_bytes)
    return Runner("tensorrt", f"TensorRT {here.tensorrt_version} engine, fp32, profile batch {batch} "
                  f"({here.gpu_name})", torch_call(engine, x), arithmetic="gpu", precision="trt-fp32")
