"""Register resnet-hub's variants with timm when timm's module runs, without importing timm (or torch) first.

timm has no plugin discovery: our ``@register_model`` calls (``resnet_hub.zoo.registry``) must run in every process
that uses timm. Importing them eagerly would cost every process torch + timm's start-up (seconds), so a finder
waits at the front of ``sys.meta_path`` for timm's own import instead, and registers right after timm's
``__init__`` has executed. Two things install it:

* ``import resnet_hub`` (``resnet_hub._timm_hook``), or
* the one-line start-up hook ``resnet_hub_timm_hook.pth`` that the wheel puts in site-packages, so that a
  program that never imports resnet_hub (transformers' ``pipeline("image-classification", model=...)`` on one
  of our Hub repos, a plain ``timm.create_model("myresnet50")``) finds the variants too. Setting
  ``RESNET_HUB_NO_TIMM_HOOK=1`` switches the start-up hook off.

Why this is a top-level module and imports nothing but ``sys``, ``os`` and ``_thread``: the start-up hook runs in
every Python process of the environment, so it must cost well under a millisecond and must never fail;
importing ``resnet_hub`` itself (its variant table) would cost more than that.

Why the finder stays until timm actually executes: libraries probe with ``importlib.util.find_spec("timm")``
(transformers does, before importing timm) and that probe calls ``find_spec`` without running the module. A
finder that retired at the first ``find_spec`` would miss the real import that follows, and the variants would
silently be "Unknown model". It retires only after timm's ``__init__`` has run; a failed import of timm leaves it
in place for the next attempt. Registration failing (a broken torch, a broken install of ours) never breaks
the host's ``import timm``: it becomes one ``RuntimeWarning`` that says why.
"""

from __future__ import annotations

import os
import sys
from _thread import allocate_lock

TARGET = "timm"
REGISTRY = "resnet_hub.zoo.registry"
ENV_OFF = "RESNET_HUB_NO_TIMM_HOOK"
# Finders carrying this attribute are ours (from any copy of this module): never two at once, never asked twice.
MARK = "_resnet_hub_timm_finder"

_lock = allocate_lock()
_warned = False
_executing = 0  # timm's module is running under our loader (in some thread): that thread registers when it ends


def register_now() -> bool:
    """Import ``resnet_hub.zoo.registry`` (its import registers every variant); on failure warn once, never raise."""
    global _warned
    try:
        __import__(REGISTRY)
        return True
    except Exception as exc:  # noqa: BLE001  (the host program's `import timm` must not fail because of us)
        if not _warned:
            _warned = True
            import warnings

            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            warnings.warn(f"resnet_hub could not register its models with timm ({type(exc).__name__}: {first}); "
                          f"timm works without them. `import {REGISTRY}` shows the full error.",
                          RuntimeWarning, stacklevel=2)
        return False


class _RegisteringLoader:
    """Runs timm's own loader, then registers. timm's module gets its real loader back before it runs, so
    ``timm.__loader__`` / ``timm.__spec__.loader`` (importlib.resources, reload) are timm's own."""

    def __init__(self, loader) -> None:  # noqa: ANN001  (any importlib loader)
        self._loader = loader

    def __getattr__(self, name: str):  # a probe's spec may be asked is_package(), get_code(), ...
        return getattr(self._loader, name)

    def create_module(self, spec):  # noqa: ANN001, ANN201
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001
        global _executing
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        _executing += 1
        try:
            self._loader.exec_module(module)  # raises: the finder stays for the next attempt
            uninstall()
            register_now()
        finally:
            _executing -= 1


class _TimmFinder:
    """Finds nothing itself: asks the finders behind it for ``timm`` and wraps the loader they return. Every call
    wraps afresh (a probe's spec is never executed); only the spec that is executed registers."""

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001, ANN201  (importlib's signature)
        if fullname != TARGET:
            return None
        for finder in list(sys.meta_path):
            if getattr(finder, MARK, False):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if loader is not None and hasattr(loader, "exec_module") and not isinstance(loader, _RegisteringLoader):
                spec.loader = _RegisteringLoader(loader)
            return spec
        return None  # timm is not installed (yet): the import fails as it would without us; keep waiting

    def invalidate_caches(self) -> None:
        pass


setattr(_TimmFinder, MARK, True)
_finder = _TimmFinder()


def installed() -> bool:
    """Whether a finder (this one or another copy's) is waiting for timm's import."""
    return any(getattr(f, MARK, False) for f in sys.meta_path)


def uninstall() -> None:
    with _lock:
        sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, MARK, False)]


def install() -> None:
    """Make sure our variants are (or will be, as soon as timm has been imported) registered with timm."""
    if sys.modules.get(TARGET) is not None:
        if not _executing:  # else the thread running timm's import under our loader registers when it ends
            register_now()  # timm came first (or is being imported without us): waits for it, then registers
        return
    with _lock:
        if not installed():
            sys.meta_path.insert(0, _finder)


def install_at_startup() -> None:
    """What ``resnet_hub_timm_hook.pth`` runs in every process: put the finder in place, unless switched off;
    silent, and never raises (a start-up hook must not be able to stop Python from starting)."""
    try:
        if os.environ.get(ENV_OFF, "") in ("", "0"):
            install()
    except Exception:  # noqa: BLE001,S110
        pass
