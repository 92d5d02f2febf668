"""Register our variants with timm the moment timm is imported, without importing timm (or torch) ourselves.

The product's promise is ``import resnet_hub; timm.create_model('myresnet50')``. timm has no plugin discovery,
so our ``@register_model`` calls (``resnet_hub.registry``) must run in every process that imports both. Running
them at ``import resnet_hub`` would cost torch + timm's start-up (seconds) to every user of the package, the
``resnet-hub --help`` command included. Instead:

* if timm is already imported, ``install()`` registers at once (``import timm; import resnet_hub``);
* otherwise it puts a finder at the front of ``sys.meta_path`` that waits for timm's own import and registers
  right after timm's ``__init__`` has run (``import resnet_hub; import timm``, ``from timm import create_model``,
  ``import timm.models`` ... all import the top-level ``timm`` first). The finder then removes itself.

Either way, by the time any code can call ``timm.create_model`` or ``timm.list_models``, ``myresnet*`` is there.
A failure to register (a broken torch or torchvision, say) must not break the import of timm itself for the host
program: it becomes a ``RuntimeWarning`` naming the cause, and ``import resnet_hub.registry`` raises it again.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from types import ModuleType

TARGET = "timm"
REGISTRY = "resnet_hub.registry"

_lock = threading.Lock()


def register_now() -> None:
    """Import ``resnet_hub.registry`` (its import registers every variant); warn instead of raising."""
    try:
        importlib.import_module(REGISTRY)
    except Exception as exc:  # noqa: BLE001  (the host program's `import timm` must not fail because of us)
        warnings.warn(f"resnet_hub could not register its models with timm: {type(exc).__name__}: {exc}. "
                      f"`import {REGISTRY}` shows the full error.", RuntimeWarning, stacklevel=2)


class _RegisteringLoader(importlib.abc.Loader):
    """Runs timm's own loader, then registers. Puts timm's real loader back on the module before running it, so
    ``timm.__loader__`` / ``timm.__spec__.loader`` (used by importlib.resources and reload) are timm's own."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        register_now()


class _TimmFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: asks the finders behind it for ``timm`` and wraps the loader they return."""

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001  (importlib's signature)
        if fullname != TARGET:
            return None
        uninstall()  # one shot: no recursion, and no cost on later imports
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        install()  # timm is not installed (yet): the import fails as it would without us; keep waiting
        return None


_finder = _TimmFinder()


def installed() -> bool:
    """Whether the finder is waiting for timm's import."""
    return any(f is _finder for f in sys.meta_path)


def uninstall() -> None:
    with _lock:
        sys.meta_path[:] = [f for f in sys.meta_path if f is not _finder]


def install() -> None:
    """Make sure our variants are (or will be, as soon as timm is imported) registered with timm."""
    if sys.modules.get(TARGET) is not None:
        register_now()
        return
    with _lock:
        if not installed():
            sys.meta_path.insert(0, _finder)
