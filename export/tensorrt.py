"""TensorRT engines, the build half: a serialized plan from a verified ONNX graph, checked against PyTorch.

This module is the thin layer that calls TensorRT's builder; every decision (flags per TensorRT generation, which
ONNX graph to feed, profile shapes, timing-cache location) is made by the pure functions of
:mod:`export.tensorrt_plan`, and loading / running an engine is :mod:`export.tensorrt_runtime` (readers of engines
import only that). Where TensorRT or CUDA is missing the export stops before writing anything and says what to
install; nothing is emulated.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from resnet_hub.weights.io import atomic_write

from .calibration import find_images, load_calibration_batch
from .digest import sha256_of, sha256_of_files
from .engine_cache import EngineCache
from .engine_record import EngineRecord, Environment, cache_key
from .errors import ExportError, ExportOptionError, VerificationError
from .files import StagedFiles
from .int8_tensorrt import count_qdq_nodes, import_modelopt_quantize, quantize_int8
from .manifest import build_manifest, write_manifest
from .names import ENGINE_FILE, INPUT_NAME, MANIFEST_FILE, ONNX_FILE, QDQ_FILE, RECORD_FILE, data_file_name
from .onnx import OnnxOptions, Progress, manifest_preprocessing, options_dict, write_verified_onnx
from .preprocessing_graph import PixelGrid
from .result import Artifact, ExportResult
from .runtime import engine_logits, to_uint8_nhwc
from .source import ModelSource, load_model_source
from .tensorrt_plan import (
    BatchProfile,
    BuildPlan,
    default_timing_cache,
    parity_tolerance,
    plan_build,
    resolve_profile,
)
from .tensorrt_runtime import (  # re-exported: the build half runs what it builds
    EngineSession,
    TensorRTImportError,
    TensorRTModule,
    _torch_dtype,
    check_engine_input,
    cuda_environment,
    import_tensorrt,
    load_session,
    require_cuda,
)
from .verify import compare_runtime

DEFAULT_CACHE_DIR = Path(os.environ.get("RESNET_HUB_CACHE", Path.home() / ".cache" / "resnet-hub")) / "tensorrt"
__all__ = ["EngineSession", "TensorRTImportError", "TensorRTModule", "TensorRTOptions", "_torch_dtype",
           "check_engine_input", "cuda_environment", "export_tensorrt", "import_tensorrt", "load_session",
           "require_cuda"]


@dataclass(frozen=True)
class TensorRTOptions:
    """Options of ``resnet-hub export --format tensorrt``."""

    precision: str = "fp16"
    min_batch: int | None = None
    opt_batch: int | None = None
    max_batch: int | None = None
    workspace_mib: int = 4096
    optimization_level: int = 3
    timing_cache: Path | None = None  # None: a per-GPU file under ~/.cache/resnet-hub/tensorrt
    use_timing_cache: bool = True
    calib_data: str | None = None  # a folder of images (flat or per class) or 'digits', as for ONNX int8
    calib_limit: int = 512
    calib_method: str = "entropy"
    version_compatible: bool = False  # later TensorRT runtimes may load the engine
    hardware_compatibility: str = "same"  # 'same' (this GPU architecture) | 'ampere+' (compute capability >= 8.0)
    engine_cache: bool = True  # reuse an engine built from the same graph, settings, TensorRT and GPU
    engine_cache_dir: Path | None = None  # None: ~/.cache/resnet-hub/tensorrt/engines


def plan_for(options: TensorRTOptions, onnx_options: OnnxOptions, trt_version: str,
             device_name: str = "gpu", capability: tuple[int, int] = (0, 0)) -> BuildPlan:
    """The build plan for these options on this TensorRT / GPU (pure apart from the arguments)."""
    profile = resolve_profile(min_batch=options.min_batch, opt_batch=options.opt_batch, max_batch=options.max_batch,
                              dynamic_batch=onnx_options.dynamic_batch, static_batch=onnx_options.batch_size)
    cache = None
    if options.use_timing_cache:
        cache = options.timing_cache or default_timing_cache(DEFAULT_CACHE_DIR, trt_version, device_name, capability)
    return plan_build(trt_version, options.precision, profile=profile, workspace_mib=options.workspace_mib,
                      optimization_level=options.optimization_level, timing_cache=cache,
                      version_compatible=options.version_compatible,
                      hardware_compatibility=options.hardware_compatibility, compute_capability=capability)


def _member(trt, enum_name: str, name: str):
    """``trt.<enum_name>.<name>``, or an error naming the TensorRT version that lacks it (never skipped:
    a flag the plan asked for and silently dropped gives a different engine than the manifest says)."""
    enum = getattr(trt, enum_name)
    member = getattr(enum, name, None)
    if member is None:
        raise ExportError(f"TensorRT {trt.__version__} has no {enum_name}.{name}, which this build plan needs; "
                          "install a TensorRT version that has it or change the export options")
    return member


def build_engine(onnx_path: Path, plan: BuildPlan, sample_shape: tuple[int, int, int]) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine as ``plan`` says (TensorRT 10 and 11).

    ``sample_shape`` is one input without the batch axis, as the graph takes it: (C, H, W) floats, or (H, W, 3)
    uint8 pixels for a graph with embedded preprocessing; the optimization profile varies only the batch."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(_member(trt, "NetworkDefinitionCreationFlag", name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # resolves external data beside the file
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    config.builder_optimization_level = plan.optimization_level
    for name in plan.builder_flags:
        config.set_flag(_member(trt, "BuilderFlag", name))
    if plan.hardware_level is not None:
        config.hardware_compatibility_level = _member(trt, "HardwareCompatibilityLevel", plan.hardware_level)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *plan.profile.shapes(sample_shape))
    config.add_optimization_profile(profile)
    if plan.timing_cache is not None:
        existing = plan.timing_cache.read_bytes() if plan.timing_cache.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(existing), False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path.name} "
                          "(see the TensorRT log above; a larger --workspace may help)")
    if plan.timing_cache is not None:
        cache_bytes = bytes(memoryview(config.get_timing_cache().serialize()))
        atomic_write(plan.timing_cache, lambda tmp: Path(tmp).write_bytes(cache_bytes), overwrite=True)
    return bytes(memoryview(serialized))

def engine_for_plan(parse_paths: list[Path], plan: BuildPlan, sample_shape: tuple[int, int, int], here: Environment,
                    cache: EngineCache | None) -> tuple[bytes, EngineRecord, bool]:
    """The engine for ``plan`` from the graph in ``parse_paths`` (graph first, then its data files): reused
    from ``cache`` when every fact of its key is equal, else built (and stored). Returns (engine, record,
    reused)."""
    onnx_sha = sha256_of_files(parse_paths)
    flags = plan.flags_record()
    profile = (plan.profile.min, plan.profile.opt, plan.profile.max)
    key = cache_key(onnx_sha256=onnx_sha, precision=plan.precision, profile=profile, flags=flags,
                    tensorrt_version=here.tensorrt_version, compute_capability=here.compute_capability)
    if cache is not None:
        hit = cache.lookup(key)
        if hit is not None:
            return hit[0], hit[1], True
    engine = build_engine(parse_paths[0], plan, sample_shape)
    record = EngineRecord(tensorrt_version=here.tensorrt_version,
                          compute_capability=cast("tuple[int, int]", tuple(here.compute_capability)),
                          gpu_name=here.gpu_name, cuda_runtime=here.cuda_runtime, onnx_sha256=onnx_sha,
                          precision=plan.precision, profile=profile, flags=flags,
                          engine_sha256=sha256_of(engine), engine_bytes=len(engine), cache_key=key)
    if cache is not None:
        cache.store(key, engine, record)
    return engine, record, False


def benchmark_engine(model: nn.Module, input_shape: tuple[int, int, int, int], workdir: Path,
                     here: Environment) -> tuple[bytes, BuildPlan]:
    """An fp32 engine whose profile is exactly ``input_shape``'s batch, for ``resnet-hub benchmark`` (the
    ONNX export runs on the CPU; only the build needs TensorRT)."""
    from .onnx import export_onnx_model

    batch, chw = int(input_shape[0]), tuple(int(d) for d in input_shape[1:])
    onnx_path = export_onnx_model(model, Path(workdir) / "tensorrt.onnx",
                                  input_shape=cast("tuple[int, int, int, int]", tuple(input_shape)),
                                  dynamic_batch=True, opset=20, exporter="dynamo", single_file=True, half=False)
    plan = plan_for(TensorRTOptions(precision="fp32", min_batch=batch, opt_batch=batch, max_batch=batch),
                    OnnxOptions(batch_size=batch, dynamic_batch=True), here.tensorrt_version, here.gpu_name,
                    here.compute_capability)
    return build_engine(onnx_path, plan, chw), plan  # type: ignore[arg-type]


def tensorrt_calibration(options: TensorRTOptions, data_config: dict[str, Any], pixel_input: bool) -> np.ndarray:
    """Calibration images as the graph takes them: the normalised float batch, or for a graph with embedded
    preprocessing the same images as uint8 NHWC pixels (exact: they were decoded from 8-bit files), so the
    activation ranges ModelOpt measures behind the in-graph normalisation are those of deployment."""
    assert options.calib_data is not None  # check_tensorrt_ready requires it for int8
    calibration = load_calibration_batch(options.calib_data, data_config, limit=options.calib_limit)
    return to_uint8_nhwc(calibration, data_config["mean"], data_config["std"]) if pixel_input else calibration


def int8_parse_graph(verified_onnx: Path, output: Path, options: TensorRTOptions, data_config: dict[str, Any],
                     pixel_input: bool) -> Path:
    """The Q/DQ graph TensorRT parses for an int8 engine: ModelOpt on the verified fp32 ONNX."""
    calibration = tensorrt_calibration(options, data_config, pixel_input)
    return quantize_int8(verified_onnx, output, calibration, method=options.calib_method)


def check_tensorrt_ready(options: TensorRTOptions) -> Any:
    """Fail before any file is written: TensorRT importable, a CUDA GPU, ModelOpt and images for INT8."""
    trt = import_tensorrt()
    require_cuda()
    if options.precision == "int8":
        if options.calib_data is None:
            raise ExportOptionError("--precision int8 needs --calib-data SRC: a folder of representative images or "
                                    "'digits'")
        import_modelopt_quantize()
        find_images(options.calib_data, 1)
    return trt


def export_tensorrt(
    model: str | ModelSource,
    output: str | os.PathLike,
    onnx_options: OnnxOptions = OnnxOptions(),
    options: TensorRTOptions = TensorRTOptions(),
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Verified ONNX -> (Q/DQ) -> engine -> engine vs PyTorch on the GPU, all written to ``output`` at the end."""
    onnx_options.validate()
    # User errors first (no GPU needed to find them), then the environment, then any work.
    resolve_profile(min_batch=options.min_batch, opt_batch=options.opt_batch, max_batch=options.max_batch,
                    dynamic_batch=onnx_options.dynamic_batch, static_batch=onnx_options.batch_size)
    plan_build("11.0", options.precision, profile=BatchProfile(1, 1, 1), workspace_mib=options.workspace_mib,
               optimization_level=options.optimization_level, version_compatible=options.version_compatible,
               hardware_compatibility=options.hardware_compatibility)
    trt = check_tensorrt_ready(options)
    device = torch.device("cuda", torch.cuda.current_device())
    here = cuda_environment(trt, device)
    plan = plan_for(options, onnx_options, trt.__version__, here.gpu_name, here.compute_capability)
    cache = EngineCache(options.engine_cache_dir or DEFAULT_CACHE_DIR / "engines") if options.engine_cache else None
    output = Path(output)
    names = (ONNX_FILE, data_file_name(ONNX_FILE), QDQ_FILE, data_file_name(QDQ_FILE), ENGINE_FILE, RECORD_FILE,
             MANIFEST_FILE)
    say = progress or (lambda _m: None)
    with StagedFiles(output, names, force=force) as staging:
        source = model if isinstance(model, ModelSource) else load_model_source(model, weights=weights,
                                                                                  pretrained=pretrained)
        onnx_opts = OnnxOptions(**{**asdict(onnx_options), "half": plan.onnx_half, "precision": "fp32"})
        verified = write_verified_onnx(source, staging, onnx_opts, progress)
        chw = verified.input_shape[1:]
        pixel_input = verified.pixel_input is not None  # --embed-preprocessing: uint8 (N, H, W, 3) in
        sample_shape = verified.sample_shape
        data_config = source.data_config(onnx_options.img_size)
        timings = dict(verified.timings)
        parse_path = verified.path
        if plan.needs_quantization:
            say(f"calibrating INT8 Q/DQ scales on images from {options.calib_data}")
            start = time.perf_counter()
            parse_path = int8_parse_graph(verified.path, staging / QDQ_FILE, options, data_config, pixel_input)
            timings["quantize_s"] = time.perf_counter() - start
        say(f"building the TensorRT {trt.__version__} engine ({plan.precision}, batch "
            f"{plan.profile.min}-{plan.profile.max}, opt {plan.profile.opt})")
        start = time.perf_counter()
        parse_paths = [parse_path] + ([parse_path.with_name(data_file_name(parse_path.name))]
                                      if parse_path.with_name(data_file_name(parse_path.name)).exists() else [])
        engine_bytes, record, reused = engine_for_plan(parse_paths, plan, sample_shape, here, cache)
        if reused:
            say(f"reusing the cached engine {record.cache_key[:12]} (same graph, settings, TensorRT and GPU)")
        (staging / ENGINE_FILE).write_bytes(engine_bytes)
        (staging / RECORD_FILE).write_text(record.to_json())
        timings["reuse_s" if reused else "build_s"] = time.perf_counter() - start
        say("comparing the engine with PyTorch")
        module = TensorRTModule(engine_bytes, record=record)
        # As for ONNX: the engine gets each normalised batch as the pixels a client would send, PyTorch those
        # pixels after timm's normalisation.
        reference = PixelGrid(source.model, data_config["mean"], data_config["std"]) if pixel_input else source.model
        report = compare_runtime(
            reference, engine_logits(module, embedded_preprocessing=pixel_input, data_config=data_config), chw=chw,
            batch_sizes=plan.profile.verification_batches(), tolerance=parity_tolerance(plan.precision),
            artifact=ENGINE_FILE, runtime=f"TensorRT {trt.__version__} ({here.gpu_name}"
                                          + (", uint8 pixel input)" if pixel_input else ")"))
        if not report.passed:
            raise VerificationError(f"The TensorRT engine does not match PyTorch: {report.describe()}", report)
        extra: dict[str, Any] = dict(tensorrt=dict(plan=_plan_dict(plan), gpu=here.gpu_name,
                                   compute_capability=list(here.compute_capability), parsed_onnx=parse_path.name,
                                   version_compatible=plan.version_compatible,
                                   hardware_compatibility=plan.hardware_compatibility,
                                   engine_record=record.to_dict(), engine_cache="reused" if reused else "built"))
        if plan.needs_quantization:
            extra["tensorrt"]["qdq_nodes"] = count_qdq_nodes(parse_path)
        extra["precision"] = plan.precision  # the engine's; the ONNX graph it was built from is recorded in export
        if pixel_input:
            extra["input"] = verified.pixel_input
        manifest = build_manifest(source, fmt="tensorrt", options=options_dict(onnx_opts), signature=verified.signature,
                                  preprocessing=manifest_preprocessing(source, onnx_options),
                                  verifications=[verified.verification, report],
                                  files=list(staging.iterdir()), root=staging,
                                  extra=extra, extra_versions={"tensorrt": trt.__version__})
        write_manifest(staging / MANIFEST_FILE, manifest)
        produced = sorted(p.name for p in staging.iterdir())
    artifacts = tuple(Artifact.of(output / n, _kind(n)) for n in produced)
    engine_path = output / ENGINE_FILE
    batch_of = "uint8_pixels_nhwc" if pixel_input else "images"
    hint = (f"trtexec --loadEngine={engine_path} --shapes={INPUT_NAME}:{plan.profile.opt}x"
            f"{'x'.join(map(str, sample_shape))}\n"
            f"from resnet_hub.export.tensorrt import TensorRTModule; "
            f"TensorRTModule({str(engine_path)!r})({batch_of}.cuda())")
    return ExportResult(format="tensorrt", model=source.name, output=output, artifacts=artifacts,
                        verifications=(verified.verification, report), manifest=manifest, timings=timings,
                        run_hint=hint)


def _kind(name: str) -> str:
    return {ENGINE_FILE: "engine", RECORD_FILE: "engine-record", MANIFEST_FILE: "manifest"}.get(
        name, "onnx-data" if name.endswith(".data") else "onnx")


def _plan_dict(plan: BuildPlan) -> dict[str, Any]:
    values = asdict(plan)
    values["version"] = plan.version.text
    values["timing_cache"] = str(plan.timing_cache) if plan.timing_cache else None
    return values
