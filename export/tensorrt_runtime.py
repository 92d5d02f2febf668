"""Running TensorRT engines: load a serialized plan (after checking its record against this machine) and run it
on torch CUDA tensors. The run half of the TensorRT support: readers of engines (``ExportDirectory``, ``verify``,
``benchmark``, Ray workers) import this module and never the builder (:mod:`export.tensorrt`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from resnet_hub.errors import InputShapeError, MissingDependencyError, ResNetHubError, install_hint

from .engine_record import EngineRecord, EngineRecordError, Environment, read_record
from .engine_record import check_record as check_engine_record
from .errors import DeviceUnavailableError, ExportError, ProfileShapeError
from .names import INPUT_NAME, OUTPUT_NAME
from .tensorrt_plan import BatchProfile

INSTALL_HINT = install_hint("tensorrt")  # in a clone, from source, from an index: what works where the user is
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
                f"{INSTALL_HINT}")
    return (f"The 'tensorrt' package is installed but cannot be imported ({reason}). Its TensorRT libraries "
            "(libnvinfer, libnvinfer_plugin, libnvonnxparser) must be installed for the same TensorRT version and "
            f"findable (LD_LIBRARY_PATH). {INSTALL_HINT}")


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
