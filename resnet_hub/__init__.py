"""resnet-hub: a from-scratch ResNet family for timm, torch.hub, the Hugging Face Hub and production export.

Importing the package registers every variant with timm (``timm.create_model('myresnet50')``).
"""

from __future__ import annotations

from . import _interrupt  # noqa: E402  (first: Ctrl-C while torch loads gives no traceback in the CLI)

_interrupt.install_if_cli()

from ._version import __version__  # noqa: E402,F401  (one source: see _version.py)

from . import registry  # noqa: E402,F401  (registers the models with timm)
from .configs import VARIANTS, get_variant, variant_names  # noqa: E402
from .errors import (  # noqa: E402
    ConversionError,
    CorruptWeightsError,
    HubDownloadError,
    IncompatibleWeightsError,
    InputShapeError,
    MissingDependencyError,
    PublishError,
    ResNetHubError,
    UnknownModelError,
    WeightsError,
)
from .converters.dispatch import convert_checkpoint  # noqa: E402
from .factory import create_model, list_models  # noqa: E402
from .hub import download_weights  # noqa: E402
from .publish import publish  # noqa: E402
from .weights import load_weights, load_weights_into, save_weights  # noqa: E402

__all__ = [
    "VARIANTS",
    "ConversionError",
    "CorruptWeightsError",
    "HubDownloadError",
    "IncompatibleWeightsError",
    "InputShapeError",
    "MissingDependencyError",
    "PublishError",
    "ResNetHubError",
    "UnknownModelError",
    "WeightsError",
    "convert_checkpoint",
    "create_model",
    "download_weights",
    "get_variant",
    "list_models",
    "load_weights",
    "load_weights_into",
    "publish",
    "save_weights",
    "variant_names",
]
