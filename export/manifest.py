"""The JSON manifest written beside every export: what was exported, from which weights, how it was checked.

Serving code and people debugging a deployment read it to answer "which weights are these, which
preprocessing do they need, and was this file verified?" without re-running anything.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from resnet_hub.weights import atomic_write, sha256_of_file

from .source import ModelSource
from .verify import VerificationReport

MANIFEST_VERSION = 1
_VERSIONED = ("resnet-hub", "torch", "timm", "onnx", "onnxruntime", "onnxscript", "tensorrt", "nvidia-modelopt",
              "tritonclient")


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Versions of the packages that shaped the artifact (absent ones are left out)."""
    found = {"python": platform.python_version()}
    for package in _VERSIONED:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    found.update(extra or {})
    return found


def verification_dict(report: VerificationReport) -> dict[str, Any]:
    return dict(
        artifact=report.artifact,
        runtime=report.runtime,
        checker=report.checker,
        passed=report.passed,
        tolerance=asdict(report.tolerance),
        checks=[asdict(c) for c in report.checks],
    )


def file_entries(files: Iterable[Path]) -> list[dict[str, Any]]:
    entries = []
    for path in sorted(files):
        if path.is_dir():
            for inner in sorted(p for p in path.rglob("*") if p.is_file()):
                entries.append(dict(name=str(inner.relative_to(path.parent)), bytes=inner.stat().st_size,
                                    sha256=sha256_of_file(inner)))
        else:
            entries.append(dict(name=path.name, bytes=path.stat().st_size, sha256=sha256_of_file(path)))
    return entries


def build_manifest(
    source: ModelSource,
    *,
    fmt: str,
    options: dict[str, Any],
    signature: dict[str, Any],
    preprocessing: dict[str, Any],
    verifications: Iterable[VerificationReport],
    files: Iterable[Path],
    extra: dict[str, Any] | None = None,
    extra_versions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest; ``files`` are hashed as they are (call after they are complete)."""
    reports = list(verifications)
    manifest: dict[str, Any] = dict(
        manifest_version=MANIFEST_VERSION,
        format=fmt,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        model=dict(name=source.name, variant=source.variant.name, description=source.variant.description,
                   num_classes=source.num_classes, label_names=source.label_names),
        weights=dict(source=source.weights, file_sha256=source.weights_file_sha256,
                     state_dict_sha256=source.state_dict_sha256),
        export=options,
        opset=signature.get("opset"),
        inputs=signature.get("inputs", []),
        outputs=signature.get("outputs", []),
        graph_op_counts=signature.get("op_counts", {}),
        preprocessing=preprocessing,
        verification=[verification_dict(r) for r in reports],
        verified=bool(reports) and all(r.passed for r in reports),
        files=file_entries(files),
        versions=versions(extra_versions),
    )
    if extra:
        manifest.update(extra)
    return manifest


def write_manifest(path: Path, manifest: dict[str, Any]) -> Path:
    text = json.dumps(manifest, indent=2, default=str) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=True)


def read_manifest(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
