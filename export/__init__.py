"""Export of resnet-hub models for production: ONNX (verified in ONNX Runtime), TensorRT engines and Triton
model repositories. One module per target format; :func:`export` dispatches on the format name.
"""

from __future__ import annotations

from .api import FORMATS, export
from .errors import (
    DeviceUnavailableError,
    ExportError,
    ExportOptionError,
    OutputExistsError,
    ProfileShapeError,
    VerificationError,
)
from .result import Artifact, ExportResult

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
