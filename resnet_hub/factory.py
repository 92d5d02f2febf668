"""``resnet_hub.create_model``: timm's factory plus local safetensors weights."""

from __future__ import annotations

import fnmatch
import os
from typing import Any

import timm
from torch import nn

from .configs import get_variant, variant_names
from .weights import load_weights_into


def list_models(pattern: str = "*") -> list[str]:
    """Registered variant names matching a shell-style pattern, in table order."""
    return [name for name in variant_names() if fnmatch.fnmatch(name, pattern)]


def create_model(
    name: str,
    pretrained: bool = False,
    weights: str | os.PathLike | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a variant (``name`` may carry a pretrained tag, ``myresnet50.tv_in1k``).

    ``weights`` loads a local safetensors file after construction; its recorded architecture must match.
    """
    get_variant(name)  # unknown names fail here with suggestions rather than deep inside timm
    if pretrained and weights is not None:
        raise ValueError("Pass either pretrained=True or weights=PATH, not both")
    model = timm.create_model(name, pretrained=pretrained, **kwargs)
    if weights is not None:
        load_weights_into(model, weights, architecture=name.split(".", 1)[0])
    return model
