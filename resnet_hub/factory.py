"""``resnet_hub.create_model``: timm's factory plus local safetensors weights."""

from __future__ import annotations

import fnmatch
import os
from typing import Any

import timm
from torch import nn

from .configs import get_variant, variant_names
from .weights import load_weights_into

_HUB_PREFIXES = ("hf-hub:", "local-dir:")


def list_models(pattern: str = "*") -> list[str]:
    """Registered variant names matching a shell-style pattern, in table order."""
    return [name for name in variant_names() if fnmatch.fnmatch(name, pattern)]


def create_model(
    name: str,
    pretrained: bool = False,
    weights: str | os.PathLike | None = None,
    hub_org: str | None = None,
    hub_revision: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a variant (``name`` may carry a pretrained tag, ``myresnet50.tv_in1k``, or be a published repo,
    ``hf-hub:org/name[@rev]`` / ``local-dir:/path``).

    ``weights`` loads a local safetensors file after construction; its recorded architecture must match.
    ``hub_org`` / ``hub_revision`` point pretrained downloads at a mirror organisation or pin a revision
    (defaults: ``$RESNET_HUB_ORG`` / ``$RESNET_HUB_REVISION``, else the table's repos at ``main``).
    """
    if name.startswith(_HUB_PREFIXES):
        from .hub import prefetch_hub_config

        prefetch_hub_config(name)  # fail fast and clearly before timm's own lookup, which retries for ~23 s
    else:
        get_variant(name)  # unknown names fail here with suggestions rather than deep inside timm
    if pretrained and weights is not None:
        raise ValueError("Pass either pretrained=True or weights=PATH, not both")
    hub_args = {k: v for k, v in dict(hub_org=hub_org, hub_revision=hub_revision).items() if v is not None}
    model = timm.create_model(name, pretrained=pretrained, **hub_args, **kwargs)
    if weights is not None:
        architecture = None if name.startswith(_HUB_PREFIXES) else name.split(".", 1)[0]
        load_weights_into(model, weights, architecture=architecture)
    return model
