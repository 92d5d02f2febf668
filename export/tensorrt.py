"""TensorRT engines: build a serialized plan from a verified ONNX graph and run it on torch CUDA tensors.

This module is the thin layer that calls TensorRT; every decision (flags per TensorRT generation, which ONNX
graph to feed, profile shapes, timing-cache location) is made by the pure functions of
:mod:`export.tensorrt_plan`. Where TensorRT or CUDA is missing the export stops before writing anything and
says what to install; nothing is emulated.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnet_hub.errors import InputShapeError, MissingDependencyError, ResNetHubError
from resnet_hub.weights import atomic_write

from .calibration import find_images, load_calibration_batch
from .engine_cache import EngineCache
from .engine_record import (
    EngineRecord,
    EngineRecordError,
    Environment,
    cache_key,
    files_sha256,
    read_record,
    record_path,
)
from .engine_record import check_record as check_engine_record
from .errors import DeviceUnavailableError, ExportError, ProfileShapeError, VerificationError
from .files import StagedFiles
from .manifest import build_manifest, write_manifest
from .onnx import (
    INPUT_NAME,
    MANIFEST_FILE,
    ONNX_FILE,
    OUTPUT_NAME,
    OnnxOptions,
    Progress,
    options_dict,
    data_file_name,
    manifest_preprocessing,
    write_verified_onnx,
)
from .preprocessing_graph import PixelGrid
from .quantize import count_qdq_nodes, import_modelopt_quantize, quantize_int8
from .result import Artifact, ExportResult
from .runtime import engine_logits, to_uint8_nhwc
from .source import ModelSource, load_model_source
from .tensorrt_plan import (
    ENGINE_FILE,
    BatchProfile,
    BuildPlan,
    default_timing_cache,
    parity_tolerance,
    plan_build,
    resolve_profile,
)
from .verify import compare_runtime

QDQ_FILE = "model.qdq.onnx"
RECORD_FILE = record_path(ENGINE_FILE).name
INSTALL_HINT = "pip install 'resnet-hub[tensorrt]'"
DEFAULT_CACHE_DIR = Path(os.environ.get("RESNET_HUB_CACHE", Path.home() / ".cache" / "resnet-hub")) / "tensorrt"
PURPOSE = "Building and running TensorRT engines (NVIDIA GPU and driver required)"


class TensorRTImportError(MissingDependencyError):
    """``import tensorrt`` failed; the message keeps Python's own reason (a missing package and missing
    TensorRT libraries behind installed bindings need different fixes)."""

    def __init__(self, exc: BaseException) -> None:
        ResNetHubError.__init__(self, _import_message(exc))
        self.package, self.extra = "tensorrt", "tensorrt"


def _import_message(exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in ("tensorrt", "tensorrt_bindings"):
        return (f"{PURPOSE} needs the 'tensorrt' package, which is not installed ({reason}). "
                f"Install it with: {INSTALL_HINT}")
    return (f"The 'tensorrt' package is installed but cannot be imported ({reason}). Its TensorRT libraries "
            "(libnvinfer, libnvinfer_plugin, libnvonnxparser) must be installed for the same TensorRT version and "
            f"findable (LD_LIBRARY_PATH); reinstall with: {INSTALL_HINT}")


def import_tensorrt():
    """The ``tensorrt`` module, or a :class:`TensorRTImportError` that keeps the original reason."""
    try:
        import tensorrt
    except (ImportError, OSError) as exc:  # OSError: a library found but not loadable
        raise TensorRTImportError(exc) from exc
    return tensorrt


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"TensorRT engines are built and run on an NVIDIA GPU with its driver, and torch {torch.__version__} "
            f"sees no CUDA device here (CUDA build: {torch.version.cuda or 'none'}). On such a machine: "
            f"{INSTALL_HINT}")
    return torch.device("cuda", torch.cuda.current_device())


def cuda_environment(trt, device: torch.device) -> Environment:
    """This machine's TensorRT version and GPU, as engine records state them."""
    props = torch.cuda.get_device_properties(device)
    return Environment(tensorrt_version=trt.__version__, compute_capability=(props.major, props.minor),
                       gpu_name=props.name, cuda_runtime=torch.version.cuda)


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
    calib_dir: Path | None = None
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


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
             trt.DataType.INT8: torch.int8, trt.DataType.UINT8: torch.uint8}
    if hasattr(trt.DataType, "BF16"):
        table[trt.DataType.BF16] = torch.bfloat16
    return table[dtype]


class EngineSession:
    """The TensorRT calls that load a plan and run it, and nothing else: tensor addresses and the CUDA stream
    are plain integers here, so this sequence is exercised against the real bindings without a GPU
    (tests/tensorrt_conformance) while :class:`TensorRTModule` adds the torch CUDA tensors around it."""

    def __init__(self, trt, data: bytes, input_name: str = INPUT_NAME, output_name: str = OUTPUT_NAME, *,
                 allow_host_code: bool = False) -> None:
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        if allow_host_code:  # version-compatible plans carry TensorRT's lean runtime
            self.runtime.engine_host_code_allowed = True
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise ExportError(f"TensorRT {trt.__version__} cannot load this engine: plans only run on the GPU "
                              "architecture and TensorRT version that built them (unless built with "
                              "--version-compatible / --hardware-compatibility ampere+); rebuild it here")
        self.context = self.engine.create_execution_context()
        self.input_name, self.output_name = input_name, output_name
        lo, opt, hi = self.engine.get_tensor_profile_shape(input_name, 0)
        self.profile = BatchProfile(int(lo[0]), int(opt[0]), int(hi[0]))
        self.sample_shape = tuple(int(d) for d in lo[1:])  # (C, H, W), or (H, W, 3) for pixel input
        self.input_dtype = self.engine.get_tensor_dtype(input_name)
        self.output_dtype = self.engine.get_tensor_dtype(output_name)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Fix the input shape for the next run; the output shape TensorRT derives from it."""
        if not self.context.set_input_shape(self.input_name, tuple(int(d) for d in input_shape)):
            raise ProfileShapeError(f"TensorRT refused input shape {tuple(input_shape)} (profile batch "
                                    f"{self.profile.min}-{self.profile.max}, per image {self.sample_shape})")
        return tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))

    def execute(self, input_address: int, output_address: int, stream_handle: int) -> None:
        """Enqueue one inference on ``stream_handle`` (device pointers as integers)."""
        self.context.set_tensor_address(self.input_name, int(input_address))
        self.context.set_tensor_address(self.output_name, int(output_address))
        if not self.context.execute_async_v3(int(stream_handle)):
            raise ExportError("TensorRT execute_async_v3 failed (see the TensorRT log above)")


def check_engine_input(shape: tuple[int, ...], dtype: torch.dtype, sample_shape: tuple[int, ...],
                       engine_dtype: torch.dtype) -> None:
    """Refuse a batch the engine would misread, before it reaches TensorRT. A uint8 engine has preprocessing
    embedded: a normalised float batch cast to uint8 would run and return confident nonsense, and raw pixels
    fed to a float engine skip the normalisation; both are mistakes a client makes silently."""
    pixels = engine_dtype == torch.uint8
    expected = (f"decoded uint8 RGB pixels (batch, {', '.join(map(str, sample_shape))}), NHWC, resized and cropped "
                "to the engine's input size" if pixels
                else f"a normalised float batch (batch, {', '.join(map(str, sample_shape))})")
    if pixels and dtype != torch.uint8:
        raise InputShapeError(f"This engine has preprocessing embedded and takes {expected}; got {dtype} "
                              f"{tuple(shape)}. Send the pixels as torch.uint8, without ToTensor/Normalize")
    if not pixels and not dtype.is_floating_point:
        raise InputShapeError(f"This engine takes {expected} (timm's eval transform: /255, mean/std); got {dtype} "
                              f"{tuple(shape)}. Normalise the pixels first, or export with --embed-preprocessing to "
                              "send uint8 pixels")
    if len(shape) != 4 or tuple(shape[1:]) != tuple(sample_shape):
        raise InputShapeError(f"This engine takes {expected}; got shape {tuple(shape)}")


def engine_and_record(engine: bytes | str | os.PathLike, record: EngineRecord | None,
                      check_record: bool) -> tuple[bytes, EngineRecord | None, str]:
    """The plan's bytes, its record (from the sidecar or a manifest for a path) and a name for messages."""
    if isinstance(engine, (bytes, bytearray, memoryview)):
        return bytes(engine), record, "the engine"
    path = Path(engine)
    if not path.is_file():
        raise EngineRecordError(f"{path} does not exist or is not a file")
    if record is None and check_record:
        record = read_record(path)
    return path.read_bytes(), record, str(path)


def load_session(trt, engine: bytes | str | os.PathLike, here: Environment, input_name: str = INPUT_NAME,
                 output_name: str = OUTPUT_NAME, *, record: EngineRecord | None = None,
                 check_record: bool = True) -> tuple[EngineSession, EngineRecord | None]:
    """Check the engine's record against ``here`` first (raising :class:`EngineMismatchError` /
    :class:`EngineRecordError` with nothing deserialised), then load it."""
    data, record, name = engine_and_record(engine, record, check_record)
    if record is not None and check_record:
        check_engine_record(record, here, data, name)
    session = EngineSession(trt, data, input_name, output_name,
                            allow_host_code=bool(record and record.version_compatible))
    return session, record


class TensorRTModule(nn.Module):
    """Runs a serialized TensorRT engine on torch CUDA tensors, as a drop-in ``nn.Module`` for inference.

    Before deserialising, the engine's record (``model.plan.json``, written by the export) is compared with
    this machine: another TensorRT version or GPU architecture, or a truncated file, raises
    :class:`EngineMismatchError` naming every difference and the rebuild command, instead of a crash inside
    TensorRT. ``check_record=False`` skips the check (for plans built elsewhere without a record).
    """

    def __init__(self, engine: bytes | str | os.PathLike, input_name: str = INPUT_NAME,
                 output_name: str = OUTPUT_NAME, *, record: EngineRecord | None = None,
                 check_record: bool = True) -> None:
        super().__init__()
        trt = import_tensorrt()
        device = require_cuda()
        self.session, self.record = load_session(trt, engine, cuda_environment(trt, device), input_name,
                                                 output_name, record=record, check_record=check_record)
        self.engine, self.context = self.session.engine, self.session.context
        self.input_name, self.output_name = input_name, output_name
        self.profile, self.sample_shape = self.session.profile, self.session.sample_shape
        self.input_dtype = _torch_dtype(trt, self.session.input_dtype)
        self.output_dtype = _torch_dtype(trt, self.session.output_dtype)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cuda":
            raise InputShapeError(f"TensorRTModule needs a CUDA tensor, got one on {x.device}")
        check_engine_input(tuple(x.shape), x.dtype, self.sample_shape, self.input_dtype)
        self.profile.check(int(x.shape[0]))
        x = x.to(self.input_dtype).contiguous()
        out = torch.empty(self.session.output_shape(tuple(x.shape)), dtype=self.output_dtype, device=x.device)
        stream = torch.cuda.current_stream(x.device)
        self.session.execute(x.data_ptr(), out.data_ptr(), stream.cuda_stream)
        stream.synchronize()
        return out


def engine_for_plan(parse_paths: list[Path], plan: BuildPlan, sample_shape: tuple[int, int, int], here: Environment,
                    cache: EngineCache | None) -> tuple[bytes, EngineRecord, bool]:
    """The engine for ``plan`` from the graph in ``parse_paths`` (graph first, then its data files): reused
    from ``cache`` when every fact of its key is equal, else built (and stored). Returns (engine, record,
    reused)."""
    onnx_sha = files_sha256(parse_paths)
    flags = plan.flags_record()
    profile = (plan.profile.min, plan.profile.opt, plan.profile.max)
    key = cache_key(onnx_sha256=onnx_sha, precision=plan.precision, profile=profile, flags=flags,
                    tensorrt_version=here.tensorrt_version, compute_capability=here.compute_capability)
    if cache is not None:
        hit = cache.lookup(key)
        if hit is not None:
            return hit[0], hit[1], True
    engine = build_engine(parse_paths[0], plan, sample_shape)
    record = EngineRecord(tensorrt_version=here.tensorrt_version, compute_capability=tuple(here.compute_capability),
                          gpu_name=here.gpu_name, cuda_runtime=here.cuda_runtime, onnx_sha256=onnx_sha,
                          precision=plan.precision, profile=profile, flags=flags,
                          engine_sha256=hashlib.sha256(engine).hexdigest(), engine_bytes=len(engine), cache_key=key)
    if cache is not None:
        cache.store(key, engine, record)
    return engine, record, False


def benchmark_engine(model: nn.Module, input_shape: tuple[int, int, int, int], workdir: Path,
                     here: Environment) -> tuple[bytes, BuildPlan]:
    """An fp32 engine whose profile is exactly ``input_shape``'s batch, for ``resnet-hub benchmark`` (the
    ONNX export runs on the CPU; only the build needs TensorRT)."""
    from .onnx import export_onnx_model

    batch, chw = int(input_shape[0]), tuple(int(d) for d in input_shape[1:])
    onnx_path = export_onnx_model(model, Path(workdir) / "tensorrt.onnx", input_shape=tuple(input_shape),
                                  dynamic_batch=True, opset=20, exporter="dynamo", single_file=True, half=False)
    plan = plan_for(TensorRTOptions(precision="fp32", min_batch=batch, opt_batch=batch, max_batch=batch),
                    OnnxOptions(batch_size=batch, dynamic_batch=True), here.tensorrt_version, here.gpu_name,
                    here.compute_capability)
    return build_engine(onnx_path, plan, chw), plan  # type: ignore[arg-type]


def tensorrt_calibration(options: TensorRTOptions, data_config: dict[str, Any], pixel_input: bool) -> np.ndarray:
    """Calibration images as the graph takes them: the normalised float batch, or for a graph with embedded
    preprocessing the same images as uint8 NHWC pixels (exact: they were decoded from 8-bit files), so the
    activation ranges ModelOpt measures behind the in-graph normalisation are those of deployment."""
    calibration = load_calibration_batch(options.calib_dir, data_config, limit=options.calib_limit)
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
        if options.calib_dir is None:
            raise ExportError("--precision int8 needs --calib-dir DIR with representative images")
        import_modelopt_quantize()
        find_images(options.calib_dir, 1)
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
            say(f"calibrating INT8 Q/DQ scales on images from {options.calib_dir}")
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
        extra = dict(tensorrt=dict(plan=_plan_dict(plan), gpu=here.gpu_name,
                                   compute_capability=list(here.compute_capability), parsed_onnx=parse_path.name,
                                   version_compatible=plan.version_compatible,
                                   hardware_compatibility=plan.hardware_compatibility,
                                   engine_record=record.to_dict(), engine_cache="reused" if reused else "built"))
        if plan.needs_quantization:
            extra["tensorrt"]["qdq_nodes"] = count_qdq_nodes(parse_path)
        if pixel_input:
            extra["input"] = verified.pixel_input
        manifest = build_manifest(source, fmt="tensorrt", options=options_dict(onnx_opts), signature=verified.signature,
                                  preprocessing=manifest_preprocessing(source, onnx_options),
                                  verifications=[verified.verification, report], files=list(staging.iterdir()),
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
