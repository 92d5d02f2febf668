"""timm ResNet / ResNetV2 checkpoints -> ours.

timm's ResNet keys already equal ours; its ResNetV2 (``stem.conv``, ``stages.i.blocks.j``, conv head) is
renamed by :mod:`resnet_hub.weights.converters.timm_resnetv2`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..lookup import get_variant
from ...errors import ConversionError
from .common import ConvertedWeights, finish, read_torch_checkpoint
from .timm_resnetv2 import is_timm_resnetv2_state_dict, timm_resnetv2_to_ours

SOURCE_FORMAT = "timm"


def convert(path: str | os.PathLike, model: str) -> ConvertedWeights:
    """Convert a timm ``.pth`` / ``.bin`` / ``.safetensors`` checkpoint for variant ``model`` (a
    ``model.tag`` name records that tag's preprocessing; otherwise the variant's default tag's)."""
    variant = get_variant(model)
    state_dict = read_torch_checkpoint(path)
    notes = []
    if is_timm_resnetv2_state_dict(state_dict):
        state_dict = timm_resnetv2_to_ours(state_dict)
        notes.append("renamed timm ResNetV2 keys (stem/stages/head) to ours")
    try:
        tag = variant.tag(model.split(".", 1)[1]) if "." in model else variant.default_tag
    except KeyError as exc:
        raise ConversionError(str(exc.args[0])) from None
    preprocessing = tag.preprocessing if tag else variant.default_preprocessing
    return finish(state_dict, variant.name, SOURCE_FORMAT, Path(path), preprocessing, notes)
