"""Every TensorRT decision, as pure functions that run (and are tested) without TensorRT or a GPU.

The code that calls TensorRT (:mod:`export.tensorrt`) only executes a :class:`BuildPlan`. What goes into the
plan depends on the TensorRT generation:

* TensorRT 10 before 10.12: weakly typed networks. fp16 = fp32 ONNX + ``BuilderFlag.FP16``; int8 = Q/DQ ONNX
  (explicit quantization; the implicit-calibration API is deprecated since 10.1) + ``BuilderFlag.INT8`` and
  ``FP16`` so layers left unquantized may still use fp16 kernels.
* TensorRT 10.12+: the weak-typing flags are deprecated, so the plan opts into ``STRONGLY_TYPED`` networks and
  takes precision from the graph, as TensorRT 11 must.
* TensorRT 11: strongly typed only (the precision flags and calibrators are removed). fp16 comes from an fp16
  ONNX graph, int8 from Q/DQ nodes inserted by NVIDIA ModelOpt; no precision flags at all.

Portability is part of the plan too: ``version_compatible`` adds ``BuilderFlag.VERSION_COMPATIBLE`` (later
TensorRT runtimes can load the engine; the runtime must then allow the engine's embedded host code) and
``hardware_compatibility='ampere+'`` sets ``HardwareCompatibilityLevel.AMPERE_PLUS`` (any GPU of compute
capability >= 8.0). What may load where is decided in :mod:`export.engine_record`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .engine_record import check_hardware_choice
from .errors import ExportOptionError, ProfileShapeError

Precision = Literal["fp32", "fp16", "int8"]
OnnxVariant = Literal["fp32", "fp16", "int8-qdq"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
ENGINE_FILE = "model.plan"
MIN_SUPPORTED_MAJOR = 10
STRONGLY_TYPED_SINCE = (10, 12)
MAX_OPTIMIZATION_LEVEL = 5


@dataclass(frozen=True)
class TensorRTVersion:
    major: int
    minor: int
    patch: int
    text: str

    @property
    def strongly_typed_only(self) -> bool:
        return self.major >= 11

    @property
    def prefers_strong_typing(self) -> bool:
        return (self.major, self.minor) >= STRONGLY_TYPED_SINCE


def parse_version(text: str) -> TensorRTVersion:
    """``tensorrt.__version__`` ('10.13.3.9', '11.4.0.12', '10.0.1') -> a comparable version."""
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", text or "")
    if not match:
        raise ExportOptionError(f"Cannot read the TensorRT version '{text}'")
    major, minor, patch = (int(g) if g else 0 for g in match.groups())
    if major < MIN_SUPPORTED_MAJOR:
        raise ExportOptionError(f"TensorRT {text} is too old: resnet-hub builds engines with TensorRT 10 or 11. "
                                "Upgrade it: in a clone `uv sync --extra tensorrt`, from source "
                                "`pip install '.[tensorrt]'`, from a package index pip install 'resnet-hub[tensorrt]'")
    return TensorRTVersion(major, minor, patch, text.strip())


@dataclass(frozen=True)
class BatchProfile:
    """Optimization profile of the batch axis: the engine accepts min..max and is tuned for opt."""

    min: int
    opt: int
    max: int

    def shapes(self, chw: tuple[int, int, int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) input shapes for ``IOptimizationProfile.set_shape``."""
        return ((self.min, *chw), (self.opt, *chw), (self.max, *chw))

    def covers(self, batch: int) -> bool:
        return self.min <= batch <= self.max

    def check(self, batch: int) -> None:
        """Refuse a batch the engine was not built for, saying how to rebuild."""
        if not self.covers(batch):
            raise ProfileShapeError(
                f"Batch size {batch} is outside the engine's optimization profile [{self.min}, {self.max}]; "
                f"rebuild with --min-batch/--max-batch covering {batch}"
            )

    def verification_batches(self) -> tuple[int, ...]:
        """Batch sizes to verify an engine at: the profile's ends and its optimum."""
        return tuple(sorted({self.min, self.opt, self.max}))


def resolve_profile(
    *,
    min_batch: int | None,
    opt_batch: int | None,
    max_batch: int | None,
    dynamic_batch: bool,
    static_batch: int,
) -> BatchProfile:
    """Fill in and validate the profile; a static-batch ONNX can only have the profile (b, b, b)."""
    if not dynamic_batch:
        for flag, value in (("--min-batch", min_batch), ("--opt-batch", opt_batch), ("--max-batch", max_batch)):
            if value is not None and value != static_batch:
                raise ProfileShapeError(
                    f"{flag} {value} does not fit a static-batch ONNX graph of batch {static_batch}; "
                    "export with --dynamic-batch or drop the profile flags")
        return BatchProfile(static_batch, static_batch, static_batch)
    low = 1 if min_batch is None else min_batch
    high = max(32, low) if max_batch is None else max_batch
    opt = opt_batch if opt_batch is not None else min(max(low, 8), high)
    profile = BatchProfile(low, opt, high)
    if low < 1:
        raise ProfileShapeError(f"--min-batch must be >= 1, got {low}")
    if not low <= opt <= high:
        raise ProfileShapeError(f"Need min <= opt <= max for the batch profile, got {low} / {opt} / {high}")
    return profile


@dataclass(frozen=True)
class BuildPlan:
    """Everything :func:`export.tensorrt.build_engine` does, decided up front."""

    version: TensorRTVersion
    precision: str
    onnx_variant: str  # which ONNX graph the parser reads: 'fp32', 'fp16' or 'int8-qdq'
    network_flags: tuple[str, ...]  # names in tensorrt.NetworkDefinitionCreationFlag
    builder_flags: tuple[str, ...]  # names in tensorrt.BuilderFlag
    profile: BatchProfile
    workspace_bytes: int
    optimization_level: int
    timing_cache: Path | None
    notes: tuple[str, ...] = field(default_factory=tuple)
    version_compatible: bool = False
    hardware_compatibility: str = "same"  # 'same' | 'ampere+'
    hardware_level: str | None = None  # name in tensorrt.HardwareCompatibilityLevel; None: TensorRT's default

    @property
    def runtime_allows_host_code(self) -> bool:
        """Version-compatible plans embed TensorRT's lean runtime (host code) that the runtime must be allowed
        to run (``Runtime.engine_host_code_allowed``); only load such plans from a trusted source."""
        return self.version_compatible

    def flags_record(self) -> dict[str, object]:
        """Every build setting that changes the engine (for the engine record and the cache key)."""
        return dict(network_flags=list(self.network_flags), builder_flags=list(self.builder_flags),
                    version_compatible=self.version_compatible, hardware_compatibility=self.hardware_compatibility,
                    optimization_level=self.optimization_level, workspace_bytes=self.workspace_bytes,
                    onnx_variant=self.onnx_variant)

    @property
    def needs_quantization(self) -> bool:
        return self.onnx_variant == "int8-qdq"

    @property
    def onnx_half(self) -> bool:
        return self.onnx_variant == "fp16"


def plan_build(
    version: str | TensorRTVersion,
    precision: str,
    *,
    profile: BatchProfile,
    workspace_mib: int = 4096,
    optimization_level: int = 3,
    timing_cache: Path | None = None,
    version_compatible: bool = False,
    hardware_compatibility: str = "same",
    compute_capability: tuple[int, int] | None = None,
) -> BuildPlan:
    """Decide flags and the ONNX graph to feed for ``precision`` on this TensorRT generation."""
    v = parse_version(version) if isinstance(version, str) else version
    hardware_level = check_hardware_choice(hardware_compatibility, compute_capability)
    if precision not in PRECISIONS:
        raise ExportOptionError(f"Unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    if workspace_mib < 1:
        raise ExportOptionError(f"--workspace must be >= 1 MiB, got {workspace_mib}")
    if not 0 <= optimization_level <= MAX_OPTIMIZATION_LEVEL:
        raise ExportOptionError(f"--optimization-level must be 0-{MAX_OPTIMIZATION_LEVEL}, got {optimization_level}")
    onnx_variant = {"fp32": "fp32", "fp16": "fp16", "int8": "int8-qdq"}[precision]
    notes: list[str] = []
    if v.strongly_typed_only:
        network_flags: tuple[str, ...] = ()
        builder_flags: tuple[str, ...] = ()
        notes.append(f"TensorRT {v.text}: strongly typed networks only; precision comes from the ONNX graph")
    elif v.prefers_strong_typing:
        network_flags, builder_flags = ("STRONGLY_TYPED",), ()
        notes.append(f"TensorRT {v.text}: weak-typing precision flags are deprecated; using a strongly typed network")
    else:
        network_flags = ()
        if precision == "fp16":
            onnx_variant, builder_flags = "fp32", ("FP16",)
            notes.append("weakly typed: fp32 graph with BuilderFlag.FP16 lets TensorRT choose fp16 kernels")
        elif precision == "int8":
            builder_flags = ("INT8", "FP16")
            notes.append("explicit quantization: Q/DQ graph + BuilderFlag.INT8 (FP16 for unquantized layers); "
                         "the implicit calibrator is deprecated")
        else:
            builder_flags = ()
            notes.append(f"TensorRT {v.text}: fp32 network, no precision flags (TF32 may be used on Ampere+)")
    if onnx_variant == "int8-qdq":
        notes.append("int8 scales come from ModelOpt Q/DQ calibration on --calib-dir images")
    if version_compatible:
        builder_flags = (*builder_flags, "VERSION_COMPATIBLE")
        notes.append("version-compatible: later TensorRT runtimes can load the engine (it embeds the lean runtime)")
    if hardware_level is not None:
        notes.append("hardware-compatible: runs on any Ampere or newer GPU (compute capability >= 8.0), "
                     "possibly a little slower")
    return BuildPlan(
        version=v,
        precision=precision,
        onnx_variant=onnx_variant,
        network_flags=network_flags,
        builder_flags=builder_flags,
        profile=profile,
        workspace_bytes=workspace_mib * (1 << 20),
        optimization_level=optimization_level,
        timing_cache=timing_cache,
        notes=tuple(notes),
        version_compatible=version_compatible,
        hardware_compatibility=hardware_compatibility,
        hardware_level=hardware_level,
    )


def default_timing_cache(cache_dir: Path, version: str, device_name: str, compute_capability: tuple[int, int]) -> Path:
    """Timing caches are only valid for one TensorRT version on one GPU model: the file name says which,
    so caches for different GPUs or versions never get mixed up (TensorRT would reject or mis-tune them)."""
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-").lower() or "gpu"
    trt = re.sub(r"[^0-9.]+", "", version) or "unknown"
    return Path(cache_dir) / f"timing-trt{trt}-{gpu}-sm{compute_capability[0]}{compute_capability[1]}.cache"


def parity_tolerance(precision: str):
    """Which :mod:`export.verify` tolerance an engine of ``precision`` is held to."""
    from .verify import FP16, INT8, TRT_FP32

    return {"fp32": TRT_FP32, "fp16": FP16, "int8": INT8}[precision]
