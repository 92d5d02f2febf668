"""Export of resnet-hub models for production: ONNX (verified in ONNX Runtime), TensorRT engines and Triton
model repositories. One module per target format; :func:`export` dispatches on the format name.

``export``, ``FORMATS``, ``Artifact`` and ``ExportResult`` are imported on first use (PEP 562), so reading an
export directory (``verify``, ``evaluate``, Ray workers) does not import the exporters and torch first.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    DeviceUnavailableError,
    ExportError,
    ExportOptionError,
    OutputExistsError,
    ProfileShapeError,
    VerificationError,
)

_LAZY = {"FORMATS": "api", "export": "api", "Artifact": "result", "ExportResult": "result"}

__all__ = [
    "FORMATS",
    "Artifact",
    "DeviceUnavailableError",
    "ExportError",
    "ExportOptionError",
    "ExportResult",
    "OutputExistsError",
    "ProfileShapeError",
    "VerificationError",
    "export",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
