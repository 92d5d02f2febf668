"""Typed export errors, all under ``ResNetHubError`` so the CLI turns them into one line and exit code 1."""

from __future__ import annotations

from resnet_hub.errors import ResNetHubError


class ExportError(ResNetHubError):
    """An export could not be completed; nothing was left at the output location."""


class ExportOptionError(ExportError, ValueError):
    """Options that cannot work together (opset outside an exporter's range, bad sizes, ...)."""


class ProfileShapeError(ExportOptionError):
    """A batch size or optimization profile that the engine does not (or cannot) cover."""


class OutputExistsError(ExportError, FileExistsError):
    """An artifact is already at the output location and ``force`` was not given."""


class VerificationError(ExportError):
    """The exported artifact does not reproduce PyTorch within tolerance (or fails the ONNX checker)."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class AccuracyGateError(VerificationError):
    """The artifact loses more top-1 accuracy on labelled images than its precision allows (``--eval-data``)."""


class DeviceUnavailableError(ExportError):
    """The target needs an NVIDIA GPU with CUDA, and none is usable here."""
