"""The model class of each family: the one place where the table's ``family`` becomes code.

Sits just above the table (``configs``) and the model files, below everything that builds a model: timm
registration (``registry``) builds through timm's builder, and ``identify`` builds bare architectures on the
meta device to compare tensor shapes without touching timm's registry or the Hub.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .configs import VARIANTS, VariantConfig
from .resnet import ResNet
from .resnetv2 import ResNetV2

MODEL_CLASSES: dict[str, type[nn.Module]] = {"resnet": ResNet, "resnetv2": ResNetV2}


def model_class(variant: VariantConfig) -> type[nn.Module]:
    """ResNet or ResNetV2, as the variant's family says."""
    return MODEL_CLASSES[variant.family]


def build_architecture(name: str, **kwargs: Any) -> nn.Module:
    """The bare model of table variant ``name`` (no timm ``pretrained_cfg``, no weights): for shape checks."""
    variant = VARIANTS[name]
    return model_class(variant)(**dict(variant.model_args(), model_name=name, **kwargs))
