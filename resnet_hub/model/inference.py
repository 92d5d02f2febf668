"""An opt-in fast path for inference: BatchNorm folded into convolutions, channels-last, optional compile.

Eval-mode BatchNorm is a per-channel affine map, so when it directly follows a convolution it can be
merged into that convolution's weight and bias: one op instead of two, and one less pass over the
activations, with the same result up to float rounding. Channels-last (NHWC) is the layout oneDNN's
convolutions run fastest in on CPU, so the weights are stored that way and the first convolution
converts the input. ``torch.compile`` is left off by default because compiling a ResNet-50 on a small
CPU takes minutes; turn it on for long-running services.

The original model is never changed: :func:`prepare_for_inference` works on a deep copy, so training
code can keep using its model while a server uses the prepared one.
"""

from __future__ import annotations

import copy
from typing import Iterator, TypeGuard, cast

import torch
from torch import nn

from .resnet import BasicBlock, Bottleneck, ResNet
from .resnetv2 import PreActBottleneck

__all__ = ["fold_batchnorm", "fold_conv_bn_", "prepare_for_inference", "remaining_batchnorms"]

# Which (convolution, batch norm) attribute pairs of each block run back to back in forward(), with
# nothing (no activation, no residual add, no branch) in between. Only these are folded.
_FOLDABLE_PAIRS: dict[type[nn.Module], tuple[tuple[str, str], ...]] = {
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    # Pre-activation: norm2/norm3 normalise conv1/conv2 outputs directly. norm1 (and the final norm)
    # read the residual sum, which the shortcut also reads un-normalised, so they stay as they are.
    PreActBottleneck: (("conv1", "norm2"), ("conv2", "norm3")),
}


@torch.no_grad()
def fold_conv_bn_(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Merge eval-mode ``bn`` into ``conv`` in place (``bn`` must directly follow ``conv``).

    ``bn(conv(x)) = scale * (W x + b - mean) + beta`` with ``scale = gamma / sqrt(var + eps)``, so the
    folded conv has weight ``W * scale`` (per output channel) and bias ``(b - mean) * scale + beta``.
    Per-channel factors are computed in float64, so folding adds at most one rounding per weight.
    """
    if not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        raise ValueError("Cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    if conv.out_channels != bn.num_features:
        raise ValueError(f"Conv has {conv.out_channels} output channels but BatchNorm has {bn.num_features}")
    # Per-channel factors in float64 (cheap: one value per channel); the weight is scaled in place in
    # its own dtype, which rounds once, like the original BatchNorm's multiply did.
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(mean)
    new_bias = (bias - mean) * scale + beta
    weight = conv.weight
    weight.mul_(scale.to(weight.dtype).reshape(-1, *([1] * (weight.dim() - 1))))
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias.to(dtype=weight.dtype, device=weight.device), requires_grad=False)
    else:
        conv.bias.copy_(new_bias.to(conv.bias.dtype))


def _is_conv(module: nn.Module | None) -> TypeGuard[nn.Conv2d]:
    return isinstance(module, nn.Conv2d)


def _is_bn(module: nn.Module | None) -> TypeGuard[nn.BatchNorm2d]:
    return isinstance(module, nn.BatchNorm2d)


def _fold_pairs(model: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Conv2d, nn.BatchNorm2d]]:
    """Yield (parent, bn attribute name, conv, bn) for every conv -> bn pair that forward() runs back to back."""
    for parent in model.modules():
        for cls, pairs in _FOLDABLE_PAIRS.items():
            if type(parent) is cls:
                for conv_name, bn_name in pairs:
                    conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
                    if _is_conv(conv) and _is_bn(bn):
                        yield parent, bn_name, conv, bn
        if type(parent) is ResNet:
            # Stem: a single conv, or (deep stem) a Sequential whose last conv feeds the model's bn1.
            stem = parent.conv1
            last_conv = stem[-1] if isinstance(stem, nn.Sequential) else stem
            if _is_conv(last_conv) and _is_bn(parent.bn1):
                yield parent, "bn1", last_conv, parent.bn1
        if type(parent) is nn.Sequential:
            # Deep stems and projection shortcuts: [pool,] conv, bn[, relu, conv, bn, ...].
            children = list(parent.named_children())
            for (_, first), (second_name, second) in zip(children, children[1:]):
                if _is_conv(first) and _is_bn(second):
                    yield parent, second_name, first, second


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a convolution into it, in place; returns how many.

    The model must be in eval mode (folding bakes in the running statistics, which training would
    update). Folded norms are replaced by ``nn.Identity`` so forward() is unchanged.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs an eval-mode model: call model.eval() first")
    # Collect first: replacing children while iterating over modules() would skip some.
    pairs = list(_fold_pairs(model))
    for parent, bn_name, conv, bn in pairs:
        fold_conv_bn_(conv, bn)
        setattr(parent, bn_name, nn.Identity())
    return len(pairs)


def remaining_batchnorms(model: nn.Module) -> list[str]:
    """Names of the BatchNorm modules left in ``model`` (after folding: those that cannot be folded)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def prepare_for_inference(
    model: nn.Module,
    *,
    fold_bn: bool = True,
    channels_last: bool = True,
    compile: bool = False,
) -> nn.Module:
    """Return a faster, eval-mode copy of ``model`` that computes the same outputs; ``model`` is untouched.

    ``fold_bn`` merges BatchNorm into the preceding convolutions; ``channels_last`` stores weights in NHWC
    (feed inputs with ``x.contiguous(memory_format=torch.channels_last)`` to skip one conversion);
    ``compile`` wraps the result in ``torch.compile`` with Inductor's weight freezing (a slow first call,
    ~10-30 s for a ResNet-50 on 2 CPU cores, then fused conv+ReLU kernels with pre-packed weights).
    Run the result under ``torch.inference_mode()``.
    """
    prepared = copy.deepcopy(model).eval()
    prepared.requires_grad_(False)
    if fold_bn:
        fold_batchnorm(prepared)
    if channels_last:
        prepared = prepared.to(memory_format=torch.channels_last)
    if compile:
        # freezing: weights become constants, so Inductor can pre-pack them for oneDNN and fuse
        # conv + bias + ReLU (+ add); fine here because the copy is inference-only.
        # torch.compile is typed as returning a callable; on a module it returns an OptimizedModule (an nn.Module).
        prepared = cast(nn.Module, torch.compile(prepared, dynamic=False, options={"freezing": True}))
    return prepared
