"""resnet-hub: a from-scratch ResNet family for timm, torch.hub, the Hugging Face Hub and production export.

Importing the package registers every variant with timm (``timm.create_model('myresnet50')``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import registry  # noqa: E402,F401  (registers the models with timm)
from .configs import VARIANTS, get_variant, variant_names  # noqa: E402
from .errors import (  # noqa: E402
    CorruptWeightsError,
    IncompatibleWeightsError,
    InputShapeError,
    MissingDependencyError,
    ResNetHubError,
    UnknownModelError,
    WeightsError,
)
from .factory import create_model, list_models  # noqa: E402
from .weights import load_weights, load_weights_into, save_weights  # noqa: E402

__all__ = [
    "VARIANTS",
    "CorruptWeightsError",
    "IncompatibleWeightsError",
    "InputShapeError",
    "MissingDependencyError",
    "ResNetHubError",
    "UnknownModelError",
    "WeightsError",
    "create_model",
    "get_variant",
    "list_models",
    "load_weights",
    "load_weights_into",
    "save_weights",
    "variant_names",
]
