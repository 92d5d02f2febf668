"""Small building blocks shared by the ResNet and ResNetV2 models.

They are written here rather than imported from timm so the models stand on their own, but their
parameter names follow timm's so checkpoints load without remapping.

TorchScript compiles the modules here (``torch.jit.script``), so annotations stay real objects it can read
(no ``from __future__ import annotations``; ``Optional[...]`` rather than ``X | None``), and every module
takes timm's ``device`` / ``dtype`` factory arguments (meta-device or bfloat16 creation).
"""

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

POOL_TYPES = ("avg", "max", "avgmax", "catavgmax", "")


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (never below it), as timm's SE modules do."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class SqueezeExcite(nn.Module):
    """Channel attention from 'Squeeze-and-Excitation Networks'; names match timm's ``SEModule``."""

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1.0 / 16,
        rd_divisor: int = 8,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        dd: dict[str, Any] = dict(device=device, dtype=dtype)
        rd_channels = make_divisible(channels * rd_ratio, rd_divisor)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True, **dd)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.fc2(self.act(self.fc1(scale)))
        return x * scale.sigmoid()


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        # Residual branches are NCHW: one draw per sample, written so TorchScript and FX can read it.
        mask = x.new_empty([x.shape[0], 1, 1, 1]).bernoulli_(keep_prob)
        return x * mask.div_(keep_prob)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class GlobalPool(nn.Module):
    """Global pooling with timm's ``global_pool`` vocabulary ('avg', 'max', 'avgmax', 'catavgmax', '')."""

    def __init__(self, pool_type: str = "avg", flatten: bool = True) -> None:
        super().__init__()
        if pool_type not in POOL_TYPES:
            raise ValueError(f"global_pool must be one of {POOL_TYPES}, got '{pool_type}'")
        self.pool_type = pool_type
        self.flatten = flatten and bool(pool_type)

    @property
    def feature_multiplier(self) -> int:
        return 2 if self.pool_type == "catavgmax" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "avg":
            x = x.mean((2, 3), keepdim=True)
        elif self.pool_type == "max":
            x = F.adaptive_max_pool2d(x, 1)
        elif self.pool_type == "avgmax":
            x = 0.5 * (x.mean((2, 3), keepdim=True) + F.adaptive_max_pool2d(x, 1))
        elif self.pool_type == "catavgmax":
            x = torch.cat((x.mean((2, 3), keepdim=True), F.adaptive_max_pool2d(x, 1)), dim=1)
        return x.flatten(1) if self.flatten else x

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}"


def build_classifier(
    num_features: int,
    num_classes: int,
    pool_type: str,
    device: Optional[torch.device] = None,
    dtype: Optional[torch.dtype] = None,
) -> Tuple[GlobalPool, nn.Module]:
    """Pooling plus a linear classifier; ``num_classes=0`` leaves pooled features (timm's convention)."""
    if not pool_type and num_classes:
        raise ValueError(
            "global_pool='' (no pooling) only works with num_classes=0: a linear classifier needs pooled features"
        )
    pool = GlobalPool(pool_type)
    fc: nn.Module = nn.Identity()
    if num_classes > 0:
        fc = nn.Linear(num_features * pool.feature_multiplier, num_classes, device=device, dtype=dtype)
    return pool, fc


def is_tracing() -> bool:
    """True while the model is being compiled or traced into a graph (TorchScript, ``torch.jit.trace``, FX).

    The input checks below compare the input's shape and dtype in Python; under FX symbolic tracing those are
    proxies that cannot decide an ``if`` (``TraceError``), and a traced graph must not depend on them, so the
    checks step aside there and only guard eager calls. ``torch.compile`` / ``torch.export`` still run them:
    Dynamo folds them into shape guards."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return True
    fx = torch.fx._symbolic_trace
    # is_fx_symbolic_tracing (torch >= 2.3) is False under torch.compile / export, whose fake tensors are fine.
    probe = getattr(fx, "is_fx_symbolic_tracing", None) or fx.is_fx_tracing
    return bool(probe())


def check_input(x: torch.Tensor, in_chans: int, model_name: str) -> None:
    """Fail early with a readable message instead of a cryptic conv error deep in the network.

    Callers guard the call with ``if not torch.jit.is_scripting()`` so TorchScript never compiles it."""
    if is_tracing():
        return
    from ..errors import InputShapeError

    if x.dim() != 4:
        hint = " Add a batch dimension, e.g. x.unsqueeze(0)." if x.dim() == 3 else ""
        raise InputShapeError(
            f"{model_name} expects a 4-D tensor (batch, {in_chans}, height, width); got shape "
            f"{tuple(x.shape)}.{hint}"
        )
    if x.shape[1] != in_chans:
        hint = (
            " The input looks channels-last (N, H, W, C): permute it with x.permute(0, 3, 1, 2)."
            if x.shape[-1] == in_chans
            else f" Create the model with in_chans={x.shape[1]} to accept this input."
        )
        raise InputShapeError(
            f"{model_name} expects {in_chans} input channels; got {x.shape[1]} (shape {tuple(x.shape)}).{hint}"
        )


def check_input_dtype(x: torch.Tensor, weight_dtype: torch.dtype, model_name: str) -> None:
    """Say what to do about an input whose dtype the weights cannot take (PyTorch's own message names C++
    types deep inside the first convolution). Under autocast mixed dtypes are intended and left alone."""
    if is_tracing() or x.dtype == weight_dtype:
        return
    if torch.is_autocast_enabled(x.device.type):
        return
    from ..errors import InputShapeError

    wanted = str(weight_dtype).replace("torch.", "")
    got = str(x.dtype).replace("torch.", "")
    if not x.dtype.is_floating_point:
        raise InputShapeError(
            f"{model_name} takes {wanted} input; got {got}. Images must be converted to floating point and "
            f"normalised first: x.float() / 255 then (x - mean) / std with the weights' mean/std "
            "(timm.data.create_transform(**timm.data.resolve_data_config(model=model)) does both)."
        )
    half = x.dtype in (torch.float16, torch.bfloat16)
    raise InputShapeError(
        f"{model_name} has {wanted} weights but got {got} input. Convert the input with x.to({weight_dtype})"
        + (f", or the model with model.to(torch.{got}), or run under torch.autocast to compute in {got}."
           if half else f", or the model with model.to(torch.{got}).")
    )
