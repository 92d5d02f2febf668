"""resnet-hub: a from-scratch ResNet family for timm, torch.hub, the Hugging Face Hub and production export.

Importing the package registers every variant with timm (``timm.create_model('myresnet50')``).

Why this file imports almost nothing: torch and timm take seconds to import, and the ``resnet-hub`` command
(``--help``, ``list``, ``info``) must answer at once. So

* the public API below is resolved on first use (PEP 562 ``__getattr__``): ``resnet_hub.create_model`` imports
  ``resnet_hub.factory`` (and torch) when it is first touched, not at ``import resnet_hub``;
* registration with timm (``resnet_hub.registry``) happens as soon as timm is imported, before or after us:
  at once if timm is already loaded, else from a one-shot import hook that runs right after timm's own import
  (see ``_timm_hook``). Code that calls ``timm.create_model`` has necessarily imported timm, so the promise
  ``import resnet_hub; timm.create_model('myresnet50')`` holds in either import order.

The variant table (``VARIANTS``, ``get_variant``, ``variant_names``) and the error classes are plain Python and
are imported eagerly.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from . import _interrupt  # noqa: E402  (first: Ctrl-C during start-up gives no traceback in the CLI)

_interrupt.install_if_cli()

from ._version import __version__  # noqa: E402,F401  (one source: see _version.py)
from .configs import VARIANTS, variant_names  # noqa: E402
from .lookup import get_variant  # noqa: E402  (table names and hf-hub: repos)
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
from . import _timm_hook  # noqa: E402

_timm_hook.install()  # registers with timm now if timm is loaded, else right after timm's import

# Public name -> the submodule that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "convert_checkpoint": "converters.dispatch",
    "create_model": "factory",
    "list_models": "factory",
    "download_weights": "hub",
    "publish": "publish",
    "load_weights": "weights",
    "load_weights_into": "weights",
    "save_weights": "weights",
}

if TYPE_CHECKING:  # static analysers and IDEs see the real objects
    from .converters.dispatch import convert_checkpoint
    from .factory import create_model, list_models
    from .hub import download_weights
    from .publish import publish
    from .weights import load_weights, load_weights_into, save_weights


def __getattr__(name: str) -> Any:
    """Resolve the public API (and ``resnet_hub.<submodule>``) on first access; cache it on the package."""
    module_name = _LAZY.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(f".{module_name}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:  # `import resnet_hub; resnet_hub.registry` worked when __init__ imported it eagerly: keep that
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``resnet_hub.publish`` is the function (as it always was), although a submodule has the same name:
    importing the submodule later (the CLI does) must not replace the function with the module on the package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return  # the submodule stays reachable as sys.modules['resnet_hub.publish'] / `from ... import`
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
    "save_weights",
    "publish",
    "variant_names",
]
