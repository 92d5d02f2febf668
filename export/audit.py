"""``resnet-hub verify DIR``: is this export still what its manifest says it is?

For any export directory (ONNX, TensorRT, a Triton model repository or one of its model directories) every
file listed in ``manifest.json`` is re-hashed, and parity with PyTorch is re-run on the runtimes this machine
has: ONNX Runtime always; TensorRT only where TensorRT and a CUDA GPU exist (elsewhere the account says it was
not re-run, and why). Nothing is written: the audit only reads.

The account is a result object (:class:`AuditResult`); ``ok`` is False for a tampered, missing or truncated
file, a manifest that is missing, unreadable or lies about a file, an artifact that no longer matches PyTorch,
or an engine built for another TensorRT version or GPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from resnet_hub.errors import ResNetHubError
from resnet_hub.weights import sha256_of_file

from .errors import ExportError

MANIFEST = "manifest.json"
ENGINE_SUFFIX = ".plan"
# Triton's TensorRT model directory keeps only the plan; the ONNX graphs its build went through stay behind.
# (Its engine record is kept in the model directory's manifest.json instead of model.plan.json.)
_NOT_SHIPPED_IN_TRITON_TENSORRT = (".onnx", ".onnx.data", ".plan.json")


class AuditError(ExportError):
    """The path to verify is not a directory."""


@dataclass(frozen=True)
class FileCheck:
    """One manifest entry compared with the file on disk."""

    name: str
    status: str  # 'ok' | 'modified' | 'missing' | 'not shipped'
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "not shipped")


@dataclass(frozen=True)
class ParityRun:
    """One recorded verification, re-run (or not) here."""

    artifact: str
    runtime: str
    status: str  # 'passed' | 'failed' | 'not re-run'
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class ExportAudit:
    """The audit of one directory holding a ``manifest.json``."""

    directory: Path
    format: str
    files: tuple[FileCheck, ...] = ()
    parity: tuple[ParityRun, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and all(f.ok for f in self.files) and all(p.ok for p in self.parity)


@dataclass(frozen=True)
class AuditResult:
    """Everything ``resnet-hub verify`` found under one path."""

    root: Path
    exports: tuple[ExportAudit, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(self.exports) and not self.problems and all(e.ok for e in self.exports)

    def failures(self) -> list[str]:
        """One line per reason the audit failed (empty when ``ok``)."""
        lines = list(self.problems)
        for audit in self.exports:
            lines += [f"{audit.directory}: {p}" for p in audit.problems]
            lines += [f"{audit.directory / f.name}: {f.status}" + (f" ({f.detail})" if f.detail else "")
                      for f in audit.files if not f.ok]
            lines += [f"{audit.directory}: {p.artifact} on {p.runtime}: {p.detail}" for p in audit.parity if not p.ok]
        return lines


def find_export_dirs(root: Path) -> tuple[list[Path], list[str]]:
    """Directories to audit under ``root`` and problems found while looking (a model directory without one)."""
    if (root / MANIFEST).exists():
        return [root], []
    dirs, problems = [], []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (child / MANIFEST).exists():
            dirs.append(child)
        elif (child / "config.pbtxt").exists() or any(child.glob("*.onnx")) or any(child.glob("*.plan")):
            problems.append(f"{child}: no {MANIFEST}, so nothing can be checked; re-export it")
    if not dirs and not problems:
        problems.append(f"{root}: no {MANIFEST} here or in its model directories: not a resnet-hub export, or its "
                        "manifest was removed; re-export it")
    return dirs, problems


def _locate(directory: Path, name: str) -> Path | None:
    """A manifest name in the directory itself or in a Triton version directory (``1/model.onnx``)."""
    candidates = [directory / name] + [v / name for v in sorted(directory.iterdir()) if v.is_dir() and v.name.isdigit()]
    return next((c for c in candidates if c.is_file()), None)


def check_files(directory: Path, manifest: dict[str, Any]) -> tuple[FileCheck, ...]:
    checks = []
    triton_engine = manifest.get("format") == "triton-tensorrt"
    for entry in manifest.get("files", []):
        name = str(entry.get("name", ""))
        path = _locate(directory, name)
        if path is None:
            if triton_engine and name.endswith(_NOT_SHIPPED_IN_TRITON_TENSORRT):
                checks.append(FileCheck(name, "not shipped", "a build input of the engine, not part of the model "
                                                              "directory"))
            else:
                checks.append(FileCheck(name, "missing", "listed in the manifest, not on disk"))
            continue
        size, digest = path.stat().st_size, sha256_of_file(path)
        if size != entry.get("bytes") or digest != entry.get("sha256"):
            checks.append(FileCheck(str(path.relative_to(directory)), "modified",
                                    f"manifest: {entry.get('bytes')} bytes, sha256 {str(entry.get('sha256'))[:12]}; "
                                    f"on disk: {size} bytes, sha256 {digest[:12]}"))
        else:
            checks.append(FileCheck(str(path.relative_to(directory)), "ok"))
    return tuple(checks)


def _reference_model(manifest: dict[str, Any], weights: Path | None) -> tuple[Any, str | None]:
    """The PyTorch model the export was verified against, rebuilt from the manifest, or (None, why not)."""
    from .source import load_model_source

    name = manifest.get("model", {}).get("name")
    recorded = manifest.get("weights", {})
    source = str(recorded.get("source", ""))
    try:
        if weights is not None:
            built = load_model_source(name, weights=weights)
        elif source == "random-init":
            return None, "the export was made from random-init weights, which cannot be rebuilt (pass --weights)"
        elif source.startswith("pretrained:"):
            built = load_model_source(name, pretrained=True)
        elif source and Path(source).is_file():
            built = load_model_source(name, weights=source)
        else:
            return None, f"the weights {source or '(not recorded)'} are not on this machine (pass --weights FILE)"
    except ResNetHubError as exc:
        return None, f"the weights could not be loaded: {exc}"
    if recorded.get("state_dict_sha256") and built.state_dict_sha256 != recorded["state_dict_sha256"]:
        return None, ("the weights found are not the ones exported (state-dict sha256 "
                      f"{built.state_dict_sha256[:12]} != recorded {str(recorded['state_dict_sha256'])[:12]})")
    return built.model, None


def _tolerance(entry: dict[str, Any]):
    from .verify import Tolerance

    return Tolerance(**entry["tolerance"])


def _onnx_runner(path: Path, pixels: dict[str, Any] | None) -> tuple[Callable | None, str]:
    """``pixels``: the data config of a graph with embedded preprocessing (it takes uint8 NHWC pixels)."""
    from .runtime import onnx_logits
    from .verify import check_onnx_file

    try:
        checker = check_onnx_file(path)
        return onnx_logits(path, embedded_preprocessing=pixels is not None, data_config=pixels), checker
    except ImportError as exc:
        return None, f"ONNX Runtime is not installed ({exc}); pip install 'resnet-hub[onnx]'"


def _tensorrt_runner(path: Path, pixels: dict[str, Any] | None) -> tuple[Callable | None, str]:
    """A runner for the engine, or None and why TensorRT parity cannot be re-run here. A record that does not
    match this machine raises (it is a failure, not a missing runtime)."""
    import torch

    from .runtime import engine_logits
    from .tensorrt import TensorRTModule, import_tensorrt

    try:
        trt = import_tensorrt()
    except ResNetHubError as exc:
        return None, str(exc)
    if not torch.cuda.is_available():
        return None, f"TensorRT {trt.__version__} is installed but torch sees no CUDA GPU here"
    module = TensorRTModule(path)
    return (engine_logits(module, embedded_preprocessing=pixels is not None, data_config=pixels),
            f"TensorRT {trt.__version__}")


def rerun_parity(directory: Path, manifest: dict[str, Any], weights: Path | None) -> tuple[ParityRun, ...]:
    from .verify import compare_runtime

    from .runtime import is_pixel_input, manifest_data_config

    entries = manifest.get("verification", [])
    # A graph with embedded preprocessing is fed the pixels of each normalised batch, as at export time.
    pixels = manifest_data_config(manifest) if is_pixel_input(manifest) else None
    model, why_not = (None, None)
    runs = []
    chw = tuple(int(v) for v in manifest.get("preprocessing", {}).get("input_size", ()))
    for entry in entries:
        artifact, runtime = str(entry.get("artifact")), str(entry.get("runtime"))
        path = _locate(directory, artifact) or _locate(directory, f"{artifact}/{artifact}")  # Triton dir form
        if path is None:
            if manifest.get("format") == "triton-tensorrt" and artifact.endswith(_NOT_SHIPPED_IN_TRITON_TENSORRT):
                runs.append(ParityRun(artifact, runtime, "not re-run", "a build input, not part of this model "
                                                                        "directory"))
            else:
                runs.append(ParityRun(artifact, runtime, "failed", "the artifact is missing"))
            continue
        try:
            if artifact.endswith(ENGINE_SUFFIX):
                run, label = _tensorrt_runner(path, pixels)
            else:
                run, label = _onnx_runner(path, pixels)
        except ResNetHubError as exc:  # an engine for another TensorRT / GPU, or a graph the checker rejects
            runs.append(ParityRun(artifact, runtime, "failed", str(exc)))
            continue
        except Exception as exc:  # onnx.checker / ONNX Runtime reject a damaged graph
            runs.append(ParityRun(artifact, runtime, "failed", f"cannot load it: {type(exc).__name__}: {exc}"))
            continue
        if run is None:
            runs.append(ParityRun(artifact, runtime, "not re-run", label))
            continue
        if model is None and why_not is None:
            model, why_not = _reference_model(manifest, weights)
            if model is not None and pixels is not None:
                from .preprocessing_graph import PixelGrid

                model = PixelGrid(model, pixels["mean"], pixels["std"])
        if model is None:
            runs.append(ParityRun(artifact, runtime, "not re-run", str(why_not)))
            continue
        batches = [int(c["batch_size"]) for c in entry.get("checks", [])] or [1]
        try:
            report = compare_runtime(model, run, chw=chw, batch_sizes=batches, tolerance=_tolerance(entry),
                                     artifact=artifact, runtime=runtime)
        except Exception as exc:  # a runtime that fails on the recorded shapes is a failed check
            runs.append(ParityRun(artifact, runtime, "failed", f"{type(exc).__name__}: {exc}"))
            continue
        runs.append(ParityRun(artifact, runtime, "passed" if report.passed else "failed",
                              f"re-run here ({label}): {report.describe()}"))
    return tuple(runs)


def audit_directory(directory: Path, parity: bool = True, weights: Path | None = None) -> ExportAudit:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return ExportAudit(directory, "unknown", problems=(f"{MANIFEST} is unreadable ({exc}); re-export",))
    problems = []
    if not manifest.get("files"):
        problems.append(f"{MANIFEST} lists no files")
    if manifest.get("verified") is not True:
        problems.append(f"{MANIFEST} does not record a passed verification")
    files = check_files(directory, manifest)
    runs = rerun_parity(directory, manifest, weights) if parity and all(f.ok for f in files) else ()
    if parity and not all(f.ok for f in files):
        runs = tuple(ParityRun(str(e.get("artifact")), str(e.get("runtime")), "not re-run",
                               "files differ from the manifest") for e in manifest.get("verification", []))
    return ExportAudit(directory, str(manifest.get("format", "unknown")), files, runs, tuple(problems))


def audit_export(path: str | Path, *, parity: bool = True, weights: str | Path | None = None) -> AuditResult:
    """Check every export under ``path`` against its manifest (and re-run parity); reads only."""
    root = Path(path)
    if not root.is_dir():
        raise AuditError(f"{root} is not a directory; pass an export directory (the --output of resnet-hub export)")
    dirs, problems = find_export_dirs(root)
    audits = tuple(audit_directory(d, parity, Path(weights) if weights else None) for d in dirs)
    return AuditResult(root, audits, tuple(problems))
