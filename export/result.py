"""What an export hands back: the files it wrote and the figures that show they are right.

Library code returns these; the CLI formats them (summary table, how-to-run hints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .verify import VerificationReport


@dataclass(frozen=True)
class Artifact:
    """One file (or directory) an export produced, at its final location."""

    path: Path
    kind: str  # 'onnx', 'onnx-data', 'engine', 'manifest', 'triton-config', 'readme', ...
    bytes: int

    @classmethod
    def of(cls, path: Path, kind: str) -> "Artifact":
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        return cls(path=path, kind=kind, bytes=size)


@dataclass(frozen=True)
class ExportResult:
    """The outcome of one ``export`` call."""

    format: str
    model: str
    output: Path
    artifacts: tuple[Artifact, ...]
    verifications: tuple[VerificationReport, ...]
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    run_hint: str = ""
    accuracy: tuple[Any, ...] = ()  # AccuracyReport per gated artifact (with --eval-data)
    warnings: tuple[str, ...] = ()  # things the user should know that did not stop the export

    @property
    def verified(self) -> bool:
        return bool(self.verifications) and all(v.passed for v in self.verifications)
