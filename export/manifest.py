"""The JSON manifest written beside every export: what was exported, from which weights, how it was checked.

Serving code and people debugging a deployment read it to answer "which weights are these, which
preprocessing do they need, and was this file verified?" without re-running anything.

:class:`Manifest` is the one typed view of it, like :class:`export.engine_record.EngineRecord`: ``from_dict`` runs
one validation that lists every problem on its own line (a manifest is data from disk, possibly edited by hand or
by an attacker), and :func:`read_manifest` is the one reader: the export-directory reader, ``verify``, the Ray
workers and engine records all go through it. Writers build the JSON with :func:`build_manifest`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import platform
import re
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterable, Mapping, TypeGuard

from .digest import sha256_of
from .errors import ExportError
from .names import GRAPH_FILES, MANIFEST_FILE, MAX_IMG_SIZE, MIN_IMG_SIZE, PRECISIONS

if TYPE_CHECKING:  # type hints only: the manifest stays importable without torch
    from .source import ModelSource
    from .verify import VerificationReport

MANIFEST_VERSION = 1
# Hostile sizes are refused before any file is opened: a manifest lists a handful of files (a Triton TensorRT
# model directory: about six), each far below 64 GiB; a manifest itself is a few KiB.
MAX_FILES = 64
MAX_FILE_BYTES = 64 << 30
MAX_MANIFEST_BYTES = 4 << 20
MAX_VERIFICATIONS = 8
MAX_CLASSES = 100_000
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos", "random")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERSIONED = ("resnet-hub", "torch", "timm", "onnx", "onnxruntime", "onnxscript", "tensorrt", "nvidia-modelopt",
              "tritonclient")


class ManifestError(ExportError):
    """A manifest that is missing, unreadable or does not describe an export; ``problems`` has one line each."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


@dataclass(frozen=True)
class FileEntry:
    """One file the export wrote, by its path relative to the export directory."""

    name: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class VerificationEntry:
    """One recorded parity run (artifact vs PyTorch); ``verify`` re-runs it with the code's own settings."""

    artifact: str
    runtime: str
    passed: bool
    tolerance: dict[str, Any]
    batch_sizes: tuple[int, ...]


@dataclass(frozen=True)
class Manifest:
    """A validated ``manifest.json``; ``data`` keeps every section as written (``to_dict``)."""

    format: str
    name: str
    num_classes: int
    label_names: tuple[str, ...] | None
    weights_source: str
    weights_path: str | None  # absolute path of the weights file at export time (verify works from any folder)
    state_dict_sha256: str | None
    precision: str
    pixel_input: bool  # the graph takes uint8 NHWC pixels (--embed-preprocessing)
    input_size: tuple[int, int, int]  # (C, H, W)
    files: tuple[FileEntry, ...]
    verification: tuple[VerificationEntry, ...]
    verified: bool
    data: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    manifest_version: int = MANIFEST_VERSION

    @property
    def graph_file(self) -> str:
        """The file a server loads (relative to its directory): model.onnx, model.plan, ..."""
        return GRAPH_FILES[self.format]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.data["preprocessing"])

    @property
    def engine_record(self) -> dict[str, Any] | None:
        record = (self.data.get("tensorrt") or {}).get("engine_record")
        return dict(record) if isinstance(record, dict) else None

    def data_config(self) -> dict[str, Any]:
        """The timm data config the export was verified with (what ``create_transform`` takes)."""
        pre = self.data["preprocessing"]
        return dict(input_size=self.input_size, interpolation=pre["interpolation"], crop_pct=float(pre["crop_pct"]),
                    crop_mode=pre.get("crop_mode", "center"), mean=tuple(float(v) for v in pre["mean"]),
                    std=tuple(float(v) for v in pre["std"]))

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, default=str) + "\n"

    @classmethod
    def from_dict(cls, values: Any, where: str = MANIFEST_FILE) -> "Manifest":
        """Validate and type ``values``; raises :class:`ManifestError` listing every problem found."""
        found = problems(values)
        if found:
            raise ManifestError(f"{where} is malformed: {'; '.join(found[:4])}"
                                + (f" (and {len(found) - 4} more)" if len(found) > 4 else "") + "; re-export",
                                tuple(found))
        model, weights, pre = values["model"], values.get("weights") or {}, values["preprocessing"]
        names = model.get("label_names")
        return cls(
            format=values["format"], name=str(model["name"]), num_classes=int(model["num_classes"]),
            label_names=tuple(names) if names is not None else None, weights_source=str(weights.get("source", "")),
            weights_path=weights.get("path"), state_dict_sha256=weights.get("state_dict_sha256"),
            precision=_precision(values), pixel_input=_pixel_input(values),
            input_size=tuple(int(v) for v in pre["input_size"]),  # type: ignore[arg-type]
            files=tuple(FileEntry(str(f["name"]), int(f["bytes"]), str(f["sha256"])) for f in values["files"]),
            verification=tuple(VerificationEntry(str(v["artifact"]), str(v["runtime"]), bool(v.get("passed")),
                                                 dict(v["tolerance"]),
                                                 tuple(int(c["batch_size"]) for c in v["checks"]))
                               for v in values["verification"]),
            verified=values["verified"] is True, data=copy.deepcopy(dict(values)),
            manifest_version=int(values["manifest_version"]))


def _precision(values: Mapping[str, Any]) -> str:
    options = values.get("export") or {}
    return str(values.get("precision") or options.get("precision") or ("fp16" if options.get("half") else "fp32"))


def _pixel_input(values: Mapping[str, Any]) -> bool:
    """One fact, recorded in two sections: the options asked for it, the preprocessing record says it is done."""
    return bool((values.get("preprocessing") or {}).get("embedded_in_graph")
                or (values.get("export") or {}).get("embed_preprocessing"))


def safe_relative_name(name: Any) -> str | None:
    """Why ``name`` cannot be a path inside an export directory (None: it can). Absolute paths, ``..``,
    backslashes, empty or ``.`` parts could point outside the directory or at a different file than shown."""
    if not isinstance(name, str) or not name:
        return "is not a non-empty string"
    if len(name) > 255 or "\0" in name or "\\" in name or any(ord(c) < 32 for c in name):
        return "has characters a relative POSIX path does not"
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if any(part in ("..", ".", "") for part in name.split("/")):
        return "leaves the export directory or is not normalised ('..', '.', '//')"
    return None


def _finite_numbers(values: Any, count: int) -> bool:
    return (isinstance(values, list) and len(values) == count
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values))


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def problems(values: Any) -> list[str]:
    """Every reason ``values`` is not a manifest this code can trust the structure of, one line each."""
    if not isinstance(values, dict):
        return [f"not a JSON object but {type(values).__name__}"]
    found: list[str] = []
    if values.get("manifest_version") != MANIFEST_VERSION:
        found.append(f"manifest_version is {str(values.get('manifest_version'))[:20]!r}, this resnet-hub reads "
                     f"{MANIFEST_VERSION}")
    if values.get("format") not in GRAPH_FILES:
        found.append(f"format {str(values.get('format'))[:40]!r} is not one of {', '.join(GRAPH_FILES)}")
    model = values.get("model")
    if not isinstance(model, dict):
        found.append("model is not an object")
    else:
        if not isinstance(model.get("name"), str) or not model.get("name"):
            found.append("model.name is not a name")
        classes = model.get("num_classes")
        if not _int(classes) or not 1 <= classes <= MAX_CLASSES:
            found.append(f"model.num_classes {str(classes)[:20]} is not a count of 1-{MAX_CLASSES}")
        names = model.get("label_names")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            found.append("model.label_names is not a list of strings")
        elif names is not None and _int(classes) and len(names) != classes:
            found.append(f"model.label_names has {len(names)} names for {classes} classes")
        elif names is not None and len(set(names)) != len(names):
            found.append("model.label_names repeats a name")
    weights = values.get("weights")
    if not isinstance(weights, dict):
        found.append("weights is not an object")
    else:
        for key in ("file_sha256", "state_dict_sha256"):
            if weights.get(key) is not None and not _SHA256.match(str(weights[key])):
                found.append(f"weights.{key} is not a sha256")
        for key in ("source", "path"):
            if weights.get(key) is not None and not isinstance(weights[key], str):
                found.append(f"weights.{key} is not a string")
    found += _preprocessing_problems(values.get("preprocessing"))
    if values.get("precision") is not None and values.get("precision") not in PRECISIONS:
        found.append(f"precision {str(values.get('precision'))[:20]!r} is not one of {', '.join(PRECISIONS)}")
    elif _precision(values) not in PRECISIONS:
        found.append(f"export.precision is not one of {', '.join(PRECISIONS)}")
    if not isinstance(values.get("export", {}), dict):
        found.append("export is not an object")
    found += _file_problems(values.get("files"))
    found += _verification_problems(values.get("verification"))
    if not isinstance(values.get("verified"), bool):
        found.append("verified is not true or false")
    return found


def _preprocessing_problems(pre: Any) -> list[str]:
    if not isinstance(pre, dict):
        return ["preprocessing is not an object"]
    found = []
    size = pre.get("input_size")
    if not (isinstance(size, list) and len(size) == 3 and all(_int(v) for v in size)):
        found.append(f"preprocessing.input_size {str(size)[:30]} is not [C, H, W]")
    else:
        if size[0] not in (1, 3):
            found.append(f"preprocessing.input_size has {size[0]} channels (1 or 3)")
        if not all(MIN_IMG_SIZE <= v <= MAX_IMG_SIZE for v in size[1:]):
            found.append(f"preprocessing.input_size {size[1]}x{size[2]} is outside {MIN_IMG_SIZE}-{MAX_IMG_SIZE} px")
    channels = size[0] if isinstance(size, list) and size and _int(size[0]) and size[0] in (1, 3) else 3
    for key in ("mean", "std"):
        if not _finite_numbers(pre.get(key), channels):
            found.append(f"preprocessing.{key} is not {channels} finite numbers")
    if _finite_numbers(pre.get("std"), channels) and min(pre["std"]) <= 0:
        found.append("preprocessing.std is not > 0")
    if pre.get("interpolation") not in INTERPOLATIONS:
        found.append(f"preprocessing.interpolation {str(pre.get('interpolation'))[:20]!r} is not one of "
                     f"{', '.join(INTERPOLATIONS)}")
    crop = pre.get("crop_pct")
    if not (isinstance(crop, (int, float)) and not isinstance(crop, bool) and math.isfinite(crop) and 0 < crop <= 2):
        found.append(f"preprocessing.crop_pct {str(crop)[:20]} is not in (0, 2]")
    return found


def _file_problems(files: Any) -> list[str]:
    if not isinstance(files, list) or not files:
        return ["files is not a non-empty list"]
    if len(files) > MAX_FILES:
        return [f"files lists {len(files)} entries, more than the {MAX_FILES} any export writes"]
    found: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            found.append(f"files[{index}] is not an object")
            continue
        why = safe_relative_name(entry.get("name"))
        if why:
            found.append(f"files[{index}].name {str(entry.get('name'))[:60]!r} {why}")
        elif entry["name"] in seen:
            found.append(f"files[{index}].name {entry['name']!r} is listed twice")
        else:
            seen.add(entry["name"])
        size = entry.get("bytes")
        if not _int(size) or not 0 <= size <= MAX_FILE_BYTES:
            found.append(f"files[{index}].bytes {str(size)[:20]} is not a size of 0-{MAX_FILE_BYTES} bytes")
        if not _SHA256.match(str(entry.get("sha256"))):
            found.append(f"files[{index}].sha256 is not a sha256")
    return found


def _verification_problems(entries: Any) -> list[str]:
    if not isinstance(entries, list) or not entries:
        return ["verification is not a non-empty list (the export records no parity check)"]
    if len(entries) > MAX_VERIFICATIONS:
        return [f"verification lists {len(entries)} runs, more than the {MAX_VERIFICATIONS} any export records"]
    found = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            found.append(f"verification[{index}] is not an object")
            continue
        if safe_relative_name(entry.get("artifact")) or not isinstance(entry.get("runtime"), str):
            found.append(f"verification[{index}] does not name an artifact and a runtime")
        if not isinstance(entry.get("tolerance"), dict):
            found.append(f"verification[{index}].tolerance is not an object")
        checks = entry.get("checks")
        if not (isinstance(checks, list) and checks and all(isinstance(c, dict) and _int(c.get("batch_size"))
                                                            for c in checks)):
            found.append(f"verification[{index}].checks is not a list of checks with batch sizes")
    return found


def read_manifest(path: str | Path) -> Manifest:
    """The one reader of ``manifest.json`` files: size-capped, symlinks refused, validated."""
    path = Path(path)
    if path.is_symlink():
        raise ManifestError(f"{path} is a symbolic link; a manifest must be a file inside the export directory")
    if not path.is_file():
        raise ManifestError(f"{path} is missing (or is not a file): not a resnet-hub export, or its manifest was "
                            "removed; re-export it")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path} is {path.stat().st_size} bytes, more than any manifest ({MAX_MANIFEST_BYTES})")
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{path} is unreadable ({type(exc).__name__}: {str(exc)[:80]}); re-export it") from exc
    return Manifest.from_dict(values, str(path))


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


def verification_dict(report: "VerificationReport") -> dict[str, Any]:
    return dict(
        artifact=report.artifact,
        runtime=report.runtime,
        checker=report.checker,
        passed=report.passed,
        tolerance=asdict(report.tolerance),
        checks=[asdict(c) for c in report.checks],
    )


def file_entries(root: Path, files: Iterable[Path]) -> list[dict[str, Any]]:
    """Manifest entries for ``files`` (folders expanded), named by their path relative to ``root``."""
    entries = []
    for path in sorted(files):
        inner = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for item in inner:
            entries.append(dict(name=item.relative_to(root).as_posix(), bytes=item.stat().st_size,
                                sha256=sha256_of(item)))
    return entries


def weights_record(source: "ModelSource") -> dict[str, Any]:
    """Where the weights came from; a local file is also recorded by absolute path, so ``verify`` finds it from
    any working directory."""
    path = Path(source.weights)
    absolute = str(path.resolve()) if source.weights_file_sha256 and path.is_file() else None
    return dict(source=source.weights, path=absolute, file_sha256=source.weights_file_sha256,
                state_dict_sha256=source.state_dict_sha256)


def build_manifest(
    source: "ModelSource",
    *,
    fmt: str,
    options: dict[str, Any],
    signature: dict[str, Any],
    preprocessing: dict[str, Any],
    verifications: Iterable["VerificationReport"],
    files: Iterable[Path],
    root: Path,
    extra: dict[str, Any] | None = None,
    extra_versions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest; ``files`` (under ``root``) are hashed as they are: call after they are complete."""
    reports = list(verifications)
    manifest: dict[str, Any] = dict(
        manifest_version=MANIFEST_VERSION,
        format=fmt,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        model=dict(name=source.name, variant=source.variant.name, description=source.variant.description,
                   num_classes=source.num_classes, label_names=source.label_names),
        weights=weights_record(source),
        export=options,
        opset=signature.get("opset"),
        inputs=signature.get("inputs", []),
        outputs=signature.get("outputs", []),
        graph_op_counts=signature.get("op_counts", {}),
        preprocessing=preprocessing,
        verification=[verification_dict(r) for r in reports],
        verified=bool(reports) and all(r.passed for r in reports),
        files=file_entries(root, files),
        versions=versions(extra_versions),
    )
    if extra:
        manifest.update(extra)
    return manifest


def write_manifest(path: Path, manifest: "Manifest | dict[str, Any]") -> Path:
    """Write ``manifest`` atomically, after the one validation every reader applies (:meth:`Manifest.from_dict`):
    an exporter can never ship a manifest that ``verify``, ``evaluate`` or the Ray workers would refuse. A refusal
    here is a defect of the writer; it raises :class:`ManifestError` and leaves no file."""
    from resnet_hub.weights.io import atomic_write  # here, not at the top: readers of manifests need no torch

    typed = manifest if isinstance(manifest, Manifest) else Manifest.from_dict(
        json.loads(json.dumps(manifest, default=str)), where=f"the manifest about to be written to {path}")
    text = typed.to_json()
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=True)
