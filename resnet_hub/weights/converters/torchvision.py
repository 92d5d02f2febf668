"""torchvision ResNet / ResNeXt / Wide ResNet checkpoints -> ours.

Our ResNet keeps torchvision's module names (``conv1``, ``layer1.0.downsample.0``, ``fc``), so conversion is
a safe read, a strict fit check against the chosen variant and a re-save as safetensors with provenance.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...model.configs import TV1
from ..lookup import get_variant
from ...errors import ConversionError
from .common import ConvertedWeights, finish, read_torch_checkpoint

SOURCE_FORMAT = "torchvision"


def convert(path: str | os.PathLike, model: str) -> ConvertedWeights:
    """Convert a torchvision ``.pth`` / ``.bin`` / ``.safetensors`` checkpoint for variant ``model``."""
    variant = get_variant(model)
    if variant.family != "resnet":
        raise ConversionError(f"torchvision has no {variant.family} models; choose a ResNet variant, not {model}.")
    state_dict = read_torch_checkpoint(path)
    # torchvision's weights (V1 and V2 recipes) expect ImageNet mean/std on RGB in [0, 1].
    return finish(state_dict, variant.name, SOURCE_FORMAT, Path(path), TV1)
