"""What an engine was built for, and whether it can run here: pure decisions, no TensorRT, no GPU.

A serialized TensorRT plan only loads on the TensorRT version and GPU it was built for, unless it was built
*version-compatible* (then later runtimes load it) or *hardware-compatible* (``ampere+``: any GPU of compute
capability 8.0 or newer). Loading one elsewhere ends in a deserialisation error or a crash deep inside
TensorRT (TensorRT #2195, #4259; ultralytics #14545), so every engine gets a sidecar record
(``model.plan.json``) and :class:`export.tensorrt.TensorRTModule` compares it with this machine *before*
deserialising, saying exactly what differs and how to rebuild.

The same facts key the engine cache: an engine is reused only when the ONNX graph, precision, profile, flags,
TensorRT version and compute capability are all equal (a stale cache is worse than none, onnxruntime #6455).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .digest import sha256_of, sha256_of_text
from .errors import ExportError, ExportOptionError
from .manifest import ManifestError, read_manifest
from .names import MANIFEST_FILE

RECORD_VERSION = 1
RECORD_SUFFIX = ".json"
HARDWARE_COMPATIBILITY = ("same", "ampere+")
# TensorRT's HardwareCompatibilityLevel member for each choice (None: the default, this GPU model only).
HARDWARE_LEVELS: dict[str, str | None] = {"same": None, "ampere+": "AMPERE_PLUS"}
AMPERE = (8, 0)


class EngineMismatchError(ExportError):
    """An engine was built for another TensorRT version or GPU (or its file changed); nothing was loaded."""

    def __init__(self, message: str, differences: tuple["Difference", ...] = ()) -> None:
        super().__init__(message)
        self.differences = differences


class EngineRecordError(ExportError):
    """An engine's record is missing or unreadable, so it cannot be checked before loading."""


@dataclass(frozen=True)
class Difference:
    """One fact that keeps an engine from running here."""

    field: str
    recorded: str
    here: str
    why: str

    def describe(self) -> str:
        return f"{self.field}: built for {self.recorded}, here {self.here} ({self.why})"


@dataclass(frozen=True)
class Environment:
    """The TensorRT runtime and GPU an engine is about to be loaded on (or built on)."""

    tensorrt_version: str
    compute_capability: tuple[int, int]
    gpu_name: str = "unknown GPU"
    cuda_runtime: str | None = None


@dataclass(frozen=True)
class EngineRecord:
    """Everything an engine depends on; written as ``<engine>.json`` beside it and into the manifest."""

    tensorrt_version: str
    compute_capability: tuple[int, int]
    gpu_name: str
    cuda_runtime: str | None
    onnx_sha256: str
    precision: str
    profile: tuple[int, int, int]  # batch min / opt / max
    flags: dict[str, Any]  # network/builder flags, version_compatible, hardware_compatibility, levels
    engine_sha256: str
    engine_bytes: int
    record_version: int = RECORD_VERSION
    cache_key: str = field(default="")

    @property
    def version_compatible(self) -> bool:
        return bool(self.flags.get("version_compatible", False))

    @property
    def hardware_compatibility(self) -> str:
        return str(self.flags.get("hardware_compatibility", "same"))

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["compute_capability"] = list(self.compute_capability)
        values["profile"] = list(self.profile)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "EngineRecord":
        try:
            if int(values.get("record_version", 0)) != RECORD_VERSION:
                raise EngineRecordError(f"engine record version {values.get('record_version')} is not "
                                        f"{RECORD_VERSION}; rebuild the engine with this resnet-hub")
            return cls(
                tensorrt_version=str(values["tensorrt_version"]),
                compute_capability=tuple(int(v) for v in values["compute_capability"]),  # type: ignore[arg-type]
                gpu_name=str(values.get("gpu_name", "unknown GPU")),
                cuda_runtime=values.get("cuda_runtime"),
                onnx_sha256=str(values["onnx_sha256"]),
                precision=str(values["precision"]),
                profile=tuple(int(v) for v in values["profile"]),  # type: ignore[arg-type]
                flags=dict(values.get("flags", {})),
                engine_sha256=str(values["engine_sha256"]),
                engine_bytes=int(values["engine_bytes"]),
                cache_key=str(values.get("cache_key", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EngineRecordError(f"engine record is incomplete or malformed ({type(exc).__name__}: {exc}); "
                                    "rebuild the engine") from exc


def record_path(engine_path: str | Path) -> Path:
    """``model.plan`` -> ``model.plan.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + RECORD_SUFFIX)


def read_record(engine_path: str | Path) -> EngineRecord:
    """The engine's sidecar record, or the ``tensorrt.engine_record`` of a manifest.json next to the engine or
    one directory up (a Triton model directory keeps the plan in ``1/`` and the manifest above it)."""
    engine_path = Path(engine_path)
    sidecar = record_path(engine_path)
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise EngineRecordError(f"{sidecar} is not readable JSON ({exc}); rebuild the engine") from exc
        return EngineRecord.from_dict(data)
    for candidate in (engine_path.parent / MANIFEST_FILE, engine_path.parent.parent / MANIFEST_FILE):
        if not candidate.is_file():
            continue
        try:
            recorded = read_manifest(candidate).engine_record
        except ManifestError as exc:
            raise EngineRecordError(f"{exc} (it should hold the engine's record)") from exc
        if recorded is not None:
            return EngineRecord.from_dict(recorded)
    raise EngineRecordError(
        f"{engine_path} has no engine record ({sidecar.name}), so resnet-hub cannot tell which TensorRT version "
        "and GPU it was built for. Rebuild it with `resnet-hub export --format tensorrt`, or load it anyway with "
        "TensorRTModule(..., check_record=False)")


def check_hardware_choice(choice: str, capability: tuple[int, int] | None = None) -> str | None:
    """Validate ``--hardware-compatibility`` (and that this GPU can build it); the TensorRT level name."""
    if choice not in HARDWARE_COMPATIBILITY:
        raise ExportOptionError(f"Unknown hardware compatibility '{choice}'; choose one of: "
                                f"{', '.join(HARDWARE_COMPATIBILITY)}")
    if choice == "ampere+" and capability is not None and tuple(capability) != (0, 0) and tuple(capability) < AMPERE:
        raise ExportOptionError(f"--hardware-compatibility ampere+ engines are built on an Ampere or newer GPU "
                                f"(compute capability >= 8.0); this one is {capability[0]}.{capability[1]}")
    return HARDWARE_LEVELS[choice]


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.strip().split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def differences(record: EngineRecord, here: Environment, engine: bytes | None = None) -> tuple[Difference, ...]:
    """Why ``record``'s engine cannot run in ``here`` (empty: it can).

    * the engine bytes must be the ones recorded (a truncated or swapped file otherwise crashes TensorRT);
    * TensorRT version: equal, or for a version-compatible engine this runtime may be the same or newer;
    * compute capability: equal, or for an ``ampere+`` engine any GPU of compute capability >= 8.0.
    """
    found: list[Difference] = []
    if engine is not None:
        size, digest = len(engine), sha256_of(engine)
        if size != record.engine_bytes or digest != record.engine_sha256:
            found.append(Difference(
                "engine file", f"{record.engine_bytes} bytes, sha256 {record.engine_sha256[:12]}",
                f"{size} bytes, sha256 {digest[:12]}", "the file is truncated or is not the engine this record "
                "describes"))
    built, running = _version_tuple(record.tensorrt_version), _version_tuple(here.tensorrt_version)
    if record.version_compatible:
        if running < built:
            found.append(Difference("TensorRT version", record.tensorrt_version, here.tensorrt_version,
                                    "a version-compatible engine runs on the same or a later TensorRT, "
                                    "never an older one"))
    elif built != running:
        found.append(Difference("TensorRT version", record.tensorrt_version, here.tensorrt_version,
                                "plans only load on the TensorRT version that built them unless built with "
                                "--version-compatible"))
    cc_built, cc_here = tuple(record.compute_capability), tuple(here.compute_capability)
    if record.hardware_compatibility == "ampere+":
        if cc_here < AMPERE:
            found.append(Difference("compute capability", "ampere+ (>= 8.0)", _cc(cc_here),
                                    "hardware-compatible engines need an Ampere or newer GPU"))
    elif cc_built != cc_here:
        found.append(Difference("compute capability", f"{_cc(cc_built)} ({record.gpu_name})",
                                f"{_cc(cc_here)} ({here.gpu_name})",
                                "plans only load on the GPU architecture that built them unless built with "
                                "--hardware-compatibility ampere+"))
    return tuple(found)


def _cc(capability: Iterable[int]) -> str:
    return ".".join(str(int(v)) for v in capability)


def mismatch_message(engine_name: str, found: Iterable[Difference], record: EngineRecord) -> str:
    """One readable paragraph: what differs and the command that rebuilds the engine here."""
    lines = "; ".join(d.describe() for d in found)
    flags = [f"--precision {record.precision}", f"--min-batch {record.profile[0]}", f"--opt-batch {record.profile[1]}",
             f"--max-batch {record.profile[2]}"]
    return (f"{engine_name} cannot run here: {lines}. Rebuild it on this machine with `resnet-hub export MODEL "
            f"--format tensorrt {' '.join(flags)}` (add --version-compatible / --hardware-compatibility ampere+ "
            "for engines that travel between TensorRT versions / GPUs)")


def check_record(record: EngineRecord, here: Environment, engine: bytes | None, engine_name: str = "engine") -> None:
    """Raise :class:`EngineMismatchError` listing every difference, or return if the engine can load here."""
    found = differences(record, here, engine)
    if found:
        raise EngineMismatchError(mismatch_message(engine_name, found, record), found)


def cache_key(
    *,
    onnx_sha256: str,
    precision: str,
    profile: tuple[int, int, int],
    flags: Mapping[str, Any],
    tensorrt_version: str,
    compute_capability: tuple[int, int],
) -> str:
    """The engine-cache key: a sha256 over exactly the facts that change the engine.

    The timing cache and the output location are left out on purpose: they change build time, not the engine's
    validity. The GPU *model* is left out too: TensorRT's own compatibility unit is the compute capability.
    """
    payload = dict(onnx_sha256=onnx_sha256, precision=precision, profile=[int(v) for v in profile],
                   flags={k: flags[k] for k in sorted(flags)}, tensorrt_version=str(tensorrt_version).strip(),
                   compute_capability=[int(v) for v in compute_capability])
    text = json.dumps(payload, sort_keys=True, default=list)
    return sha256_of_text(text)
