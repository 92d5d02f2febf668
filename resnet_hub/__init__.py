"""resnet-hub: a from-scratch ResNet family for timm, torch.hub, the Hugging Face Hub and production export.

Importing the package registers every variant with timm (``timm.create_model('myresnet50')``).

Why this file imports almost nothing: torch and timm take seconds to import, and the ``resnet-hub`` command
(``--help``, ``list``, ``info``) must answer at once. So

* the public API below is resolved on first use (PEP 562 ``__getattr__``): ``resnet_hub.create_model`` imports
  ``resnet_hub.zoo.factory`` (and torch) when it is first touched, not at ``import resnet_hub``;
* registration with timm (``resnet_hub.zoo.registry``) happens as soon as timm is imported, before or after us:
  at once if timm is already loaded, else from a one-shot import hook that runs right after timm's own import
  (see ``_timm_hook``). Code that calls ``timm.create_model`` has necessarily imported timm, so the promise
  ``import resnet_hub; timm.create_model('myresnet50')`` holds in either import order.

The variant table (``VARIANTS``, ``get_variant``, ``variant_names``) and the error classes are plain Python and
are imported eagerly.

The package stands on floors, and **a floor imports only the floors below it** (``tests/test_import_graph.py``
checks every import, function-local ones included)::

    cli/      the resnet-hub command                          (above the public API of this file)
    tasks/    data, fine-tune, evaluate, predict, benchmark, publish; and export/ (resnet_hub.export)
    zoo/      named models with their weights: timm registry, create_model, load_model
    weights/  safetensors files and their metadata, the Hub, converters
    model/    the variant table, layers, ResNet / ResNetV2
    ground    errors, leftovers, cpu, devices, _interrupt, _version, _timm_hook (the modules at this level)

So the folder names the job, and a module's imports say where it stands: a weights reader never reaches timm's
registry and a model never reads a file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _interrupt  # noqa: E402  (first: Ctrl-C during start-up gives no traceback in the CLI)

_interrupt.install_if_cli()

from ._version import __version__  # noqa: E402,F401  (one source: see _version.py)
from .model.configs import VARIANTS, variant_names  # noqa: E402
from .weights.lookup import get_variant  # noqa: E402  (table names and hf-hub: repos)
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
    "convert_checkpoint": "weights.converters.dispatch",
    "create_model": "zoo.factory",
    "list_models": "zoo.factory",
    "download_weights": "weights.hub",
    "publish": "tasks.publish",
    "load_weights": "weights.io",
    "load_weights_into": "weights.io",
    "save_weights": "weights.io",
}

if TYPE_CHECKING:  # static analysers and IDEs see the real objects
    from .weights.converters.dispatch import convert_checkpoint
    from .zoo.factory import create_model, list_models
    from .weights.hub import download_weights
    from .tasks.publish import publish
    from .weights.io import load_weights, load_weights_into, save_weights


def __getattr__(name: str) -> Any:
    """Resolve the public API (and ``resnet_hub.<submodule>``) on first access; cache it on the package."""
    module_name = _LAZY.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(f".{module_name}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:  # `import resnet_hub; resnet_hub.zoo` (a floor, see above) resolves on first access
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
