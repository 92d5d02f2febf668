"""TensorRT engines: build a serialized plan from a verified ONNX graph and run it on torch CUDA tensors.

This module is the thin layer that calls TensorRT; every decision (flags per TensorRT generation, which ONNX
graph to feed, profile shapes, timing-cache location) is made by the pure functions of
:mod:`export.tensorrt_plan`. Where TensorRT or CUDA is missing the export stops before writing anything and
says what to install; nothing is emulated.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_hub.errors import InputShapeError, MissingDependencyError
from resnet_hub.weights import atomic_write

from .calibration import find_images, load_calibration_batch
from .errors import DeviceUnavailableError, ExportError, VerificationError
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
    write_verified_onnx,
)
from .quantize import count_qdq_nodes, import_modelopt_quantize, quantize_int8
from .result import Artifact, ExportResult
from .source import ModelSource, load_model_source, preprocessing_dict
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
INSTALL_HINT = "pip install 'resnet-hub[tensorrt]' on a machine with an NVIDIA GPU and driver"
DEFAULT_CACHE_DIR = Path(os.environ.get("RESNET_HUB_CACHE", Path.home() / ".cache" / "resnet-hub")) / "tensorrt"


def import_tensorrt():
    """The ``tensorrt`` module, or a MissingDependencyError that names the extra (and the GPU it needs)."""
    try:
        import tensorrt
    except ImportError as exc:
        raise MissingDependencyError("tensorrt", "tensorrt", "Building TensorRT engines (NVIDIA GPU required)") from exc
    return tensorrt


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "TensorRT engines are built and run on an NVIDIA GPU, and torch sees no CUDA device here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Run on a GPU machine with "
            f"{INSTALL_HINT}.")
    return torch.device("cuda", torch.cuda.current_device())


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


def plan_for(options: TensorRTOptions, onnx_options: OnnxOptions, trt_version: str,
             device_name: str = "gpu", capability: tuple[int, int] = (0, 0)) -> BuildPlan:
    """The build plan for these options on this TensorRT / GPU (pure apart from the arguments)."""
    profile = resolve_profile(min_batch=options.min_batch, opt_batch=options.opt_batch, max_batch=options.max_batch,
                              dynamic_batch=onnx_options.dynamic_batch, static_batch=onnx_options.batch_size)
    cache = None
    if options.use_timing_cache:
        cache = options.timing_cache or default_timing_cache(DEFAULT_CACHE_DIR, trt_version, device_name, capability)
    return plan_build(trt_version, options.precision, profile=profile, workspace_mib=options.workspace_mib,
                      optimization_level=options.optimization_level, timing_cache=cache)


def build_engine(onnx_path: Path, plan: BuildPlan, chw: tuple[int, int, int]) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine as ``plan`` says (TensorRT 10 and 11)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flag = getattr(trt.NetworkDefinitionCreationFlag, name, None)
        if flag is not None:
            flags |= 1 << int(flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # resolves external data beside the file
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    config.builder_optimization_level = plan.optimization_level
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *plan.profile.shapes(chw))
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
             trt.DataType.INT8: torch.int8}
    if hasattr(trt.DataType, "BF16"):
        table[trt.DataType.BF16] = torch.bfloat16
    return table[dtype]


class TensorRTModule(nn.Module):
    """Runs a serialized TensorRT engine on torch CUDA tensors, as a drop-in ``nn.Module`` for inference.

    Plans are tied to the GPU model and TensorRT version they were built with; loading one elsewhere fails
    with a message saying so.
    """

    def __init__(self, engine: bytes | str | os.PathLike, input_name: str = INPUT_NAME,
                 output_name: str = OUTPUT_NAME) -> None:
        super().__init__()
        trt = import_tensorrt()
        require_cuda()
        data = engine if isinstance(engine, (bytes, bytearray)) else Path(engine).read_bytes()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise ExportError(f"TensorRT {trt.__version__} cannot load this engine: plans only run on the GPU model "
                              "and TensorRT version that built them; rebuild it here")
        self.context = self.engine.create_execution_context()
        self.input_name, self.output_name = input_name, output_name
        lo, opt, hi = self.engine.get_tensor_profile_shape(input_name, 0)
        self.profile = BatchProfile(int(lo[0]), int(opt[0]), int(hi[0]))
        self.chw = tuple(int(d) for d in lo[1:])
        self.input_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(input_name))
        self.output_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(output_name))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cuda":
            raise InputShapeError(f"TensorRTModule needs a CUDA tensor, got one on {x.device}")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.chw:
            raise InputShapeError(f"Expected input (batch, {', '.join(map(str, self.chw))}), got {tuple(x.shape)}")
        self.profile.check(int(x.shape[0]))
        x = x.to(self.input_dtype).contiguous()
        self.context.set_input_shape(self.input_name, tuple(x.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=self.output_dtype,
                          device=x.device)
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream(x.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ExportError("TensorRT execute_async_v3 failed")
        stream.synchronize()
        return out


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
               optimization_level=options.optimization_level)
    trt = check_tensorrt_ready(options)
    device = torch.device("cuda", torch.cuda.current_device())
    props = torch.cuda.get_device_properties(device)
    plan = plan_for(options, onnx_options, trt.__version__, props.name, (props.major, props.minor))
    output = Path(output)
    names = (ONNX_FILE, data_file_name(ONNX_FILE), QDQ_FILE, data_file_name(QDQ_FILE), ENGINE_FILE, MANIFEST_FILE)
    say = progress or (lambda _m: None)
    with StagedFiles(output, names, force=force) as staging:
        source = model if isinstance(model, ModelSource) else load_model_source(model, weights=weights,
                                                                                  pretrained=pretrained)
        onnx_opts = OnnxOptions(**{**asdict(onnx_options), "half": plan.onnx_half, "precision": "fp32"})
        verified = write_verified_onnx(source, staging, onnx_opts, progress)
        chw = verified.input_shape[1:]
        timings = dict(verified.timings)
        parse_path = verified.path
        if plan.needs_quantization:
            say(f"calibrating INT8 Q/DQ scales on images from {options.calib_dir}")
            start = time.perf_counter()
            calibration = load_calibration_batch(options.calib_dir, source.data_config(onnx_options.img_size),
                                                 limit=options.calib_limit)
            parse_path = quantize_int8(verified.path, staging / QDQ_FILE, calibration, method=options.calib_method)
            timings["quantize_s"] = time.perf_counter() - start
        say(f"building the TensorRT {trt.__version__} engine ({plan.precision}, batch "
            f"{plan.profile.min}-{plan.profile.max}, opt {plan.profile.opt})")
        start = time.perf_counter()
        engine_bytes = build_engine(parse_path, plan, chw)
        (staging / ENGINE_FILE).write_bytes(engine_bytes)
        timings["build_s"] = time.perf_counter() - start
        say("comparing the engine with PyTorch")
        module = TensorRTModule(engine_bytes)
        report = compare_runtime(
            source.model, lambda x: module(x.to(device)).float().cpu().numpy(), chw=chw,
            batch_sizes=plan.profile.verification_batches(), tolerance=parity_tolerance(plan.precision),
            artifact=ENGINE_FILE, runtime=f"TensorRT {trt.__version__} ({props.name})")
        if not report.passed:
            raise VerificationError(f"The TensorRT engine does not match PyTorch: {report.describe()}", report)
        extra = dict(tensorrt=dict(plan=_plan_dict(plan), gpu=props.name, compute_capability=[props.major, props.minor],
                                   parsed_onnx=parse_path.name))
        if plan.needs_quantization:
            extra["tensorrt"]["qdq_nodes"] = count_qdq_nodes(parse_path)
        manifest = build_manifest(source, fmt="tensorrt", options=options_dict(onnx_opts), signature=verified.signature,
                                  preprocessing=preprocessing_dict(source, onnx_options.img_size),
                                  verifications=[verified.verification, report], files=list(staging.iterdir()),
                                  extra=extra, extra_versions={"tensorrt": trt.__version__})
        write_manifest(staging / MANIFEST_FILE, manifest)
        produced = sorted(p.name for p in staging.iterdir())
    artifacts = tuple(Artifact.of(output / n, _kind(n)) for n in produced)
    engine_path = output / ENGINE_FILE
    hint = (f"trtexec --loadEngine={engine_path} --shapes={INPUT_NAME}:{plan.profile.opt}x{'x'.join(map(str, chw))}\n"
            f"from resnet_hub.export.tensorrt import TensorRTModule; TensorRTModule({str(engine_path)!r})(images.cuda())")
    return ExportResult(format="tensorrt", model=source.name, output=output, artifacts=artifacts,
                        verifications=(verified.verification, report), manifest=manifest, timings=timings,
                        run_hint=hint)


def _kind(name: str) -> str:
    return {ENGINE_FILE: "engine", MANIFEST_FILE: "manifest"}.get(name, "onnx-data" if name.endswith(".data") else "onnx")


def _plan_dict(plan: BuildPlan) -> dict[str, Any]:
    values = asdict(plan)
    values["version"] = plan.version.text
    values["timing_cache"] = str(plan.timing_cache) if plan.timing_cache else None
    return values
