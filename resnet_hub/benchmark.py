"""Inference speed of a variant on several backends, measured against timm's own eager model.

Every number is relative to a baseline measured in the same run, on the same input and the same
threads: timm's eager model of the same architecture (``timm resnet50`` for ``myresnet50``), or our own
eager model for the variants timm does not have. Backends are timed *interleaved* (one call of each in
turn, repeated), so a burst of load from other processes slows every backend alike instead of
skewing one of them; absolute numbers on a shared machine are still only as good as the machine's
quiet moments, which is why ratios are the headline.

Each backend's rate is also put against a *measured* ceiling of its arithmetic on the same threads
(:mod:`resnet_hub.ceilings`: a large fp32 ``torch.mm``, and ONNX Runtime's int8 ``MatMulInteger`` for the
int8 backend), so "how close to the machine's limit" needs no assumed clock or FLOPs per cycle. The operations
per image count convolutions and the classifier (``resnet_hub.stats``), two per multiply-accumulate, whatever
the precision.

Every ONNX Runtime backend is timed the way users run it: the session is created once (export, quantization
and session creation are setup, reported apart), with the benchmark's thread count, warm-up calls excluded.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from .ceilings import Ceiling
from .errors import MissingDependencyError, ResNetHubError, WeightsChoiceError
from .lookup import get_variant
from .stats import model_stats

__all__ = [
    "BACKENDS",
    "BackendResult",
    "BenchmarkError",
    "BenchmarkReport",
    "measure_ceilings",
    "run_benchmark",
]

BACKENDS: tuple[str, ...] = ("torch", "torch-optimized", "onnxruntime", "onnxruntime-fp16", "onnxruntime-int8",
                             "tensorrt")
# Images the onnxruntime-int8 backend calibrates on by default (speed does not depend on the count; accuracy is
# the export's accuracy gate's business, on labelled images).
DEFAULT_CALIB_DATA = "digits"
DEFAULT_BENCH_CALIB_LIMIT = 32
BASELINE_TIMM = "timm"

ProgressFn = Callable[[str], None]


class BenchmarkError(ResNetHubError):
    """The benchmark cannot run as asked (bad backend name, no CUDA for --device cuda, ...)."""


# --- machine ---------------------------------------------------------------------------------------------


def _cpuinfo() -> list[dict[str, str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    processors = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        processors.append(entry)
    return processors


def _physical_cores(processors: list[dict[str, str]]) -> int:
    """Physical cores this process may run on (SMT siblings share FMA units, so they do not add peak)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        allowed = set(range(os.cpu_count() or 1))
    cores = {
        (p.get("physical id", "0"), p.get("core id", p.get("processor")))
        for p in processors
        if p.get("processor", "").isdigit() and int(p["processor"]) in allowed
    }
    return len(cores) or len(allowed)


def measure_ceilings(threads: int, arithmetics: Iterable[str], peak_gflops: float | None = None,
                     previous: dict[str, Ceiling] | None = None) -> dict[str, Ceiling]:
    """Measured GEMM ceilings for the arithmetics in use ('fp32', 'int8'); ``peak_gflops`` replaces fp32's.

    With ``previous`` (an earlier measurement in the same run), each arithmetic keeps the higher of the two: a
    ceiling measured while other processes held the cores is too low, and measuring before and after the timed
    rounds makes that less likely.
    """
    from .ceilings import measure_ceiling, user_ceiling

    ceilings: dict[str, Ceiling] = {}
    for arithmetic in dict.fromkeys(a for a in arithmetics if a in ("fp32", "int8")):
        if arithmetic == "fp32" and peak_gflops:
            ceilings["fp32"] = user_ceiling(peak_gflops)
            continue
        measured = measure_ceiling(arithmetic, threads)
        earlier = (previous or {}).get(arithmetic)
        if earlier is not None and (measured is None or earlier.gops > measured.gops):
            measured = earlier
        if measured is not None:
            ceilings[arithmetic] = measured
    return ceilings


# --- results ---------------------------------------------------------------------------------------------


@dataclass
class BackendResult:
    """One backend's measurement. ``latencies_ms`` are the raw per-batch timings the summary comes from."""

    backend: str
    available: bool
    description: str = ""
    reason: str = ""  # why it is unavailable or failed
    is_baseline: bool = False
    setup_s: float | None = None  # build / export / compile plus the first call
    latencies_ms: list[float] = field(default_factory=list)
    median_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    min_ms: float | None = None
    throughput: float | None = None  # images per second at the median latency
    speedup: float | None = None  # baseline median latency / this median latency
    arithmetic: str = "fp32"  # what its kernels compute in: 'fp32', 'int8', or 'gpu' (no CPU ceiling applies)
    achieved_gflops: float | None = None  # 2 x MACs per second, whatever the precision
    ceiling_fraction: float | None = None  # achieved / the measured ceiling of its arithmetic
    max_abs_diff: float | None = None  # against resnet-hub's eager output on the same input


@dataclass
class BenchmarkReport:
    """Everything one run measured, plus the conditions needed to read it."""

    model: str
    baseline: str
    baseline_note: str
    device: str
    batch_size: int
    img_size: int
    threads: int
    warmup: int
    iters: int
    min_time_s: float | None
    gflops_per_image: float
    ceilings: dict[str, Ceiling]
    results: list[BackendResult]
    requested: list[str]
    environment: dict[str, str]
    notes: list[str] = field(default_factory=list)  # caveats found while measuring

    @property
    def all_requested_unavailable(self) -> bool:
        """True when every backend the caller asked for was unavailable (the baseline does not count)."""
        asked = [r for r in self.results if r.backend in self.requested]
        return bool(asked) and all(not r.available for r in asked)

    def result(self, backend: str) -> BackendResult:
        for r in self.results:
            if r.backend == backend:
                return r
        raise KeyError(backend)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- backends --------------------------------------------------------------------------------------------


class _Unavailable(Exception):
    """A backend cannot run here; the message says why and how to fix it."""


@dataclass
class _Runner:
    name: str
    description: str
    call: Callable[[], torch.Tensor]
    is_baseline: bool = False
    weights_match: bool = True  # False: outputs are not comparable with ours (different weights)
    cleanup: Callable[[], None] | None = None
    arithmetic: str = "fp32"


def _torch_call(model: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def call() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return call


def _timm_peer(name: str, ours: nn.Module, device: torch.device) -> tuple[nn.Module, bool]:
    """timm's eager model of the same architecture, with our weights when the layouts agree."""
    import timm

    variant = get_variant(name)
    peer = timm.create_model(variant.timm_name, pretrained=False, num_classes=ours.num_classes).eval()
    try:
        peer.load_state_dict(ours.state_dict())
        same = True
    except RuntimeError:  # e.g. ResNetV2, whose keys differ: speed does not depend on the values
        same = False
    return peer.to(device), same


@dataclass(frozen=True)
class _Calibration:
    """Where the onnxruntime-int8 backend takes its calibration images from."""

    source: str | None
    limit: int
    data_config: dict[str, Any]


def _onnxruntime_runner(
    model: nn.Module, x: torch.Tensor, threads: int, device: torch.device, workdir: Path,
    precision: str = "fp32", calibration: _Calibration | None = None,
) -> _Runner:
    """A session over the ONNX file users deploy: fp32 (BatchNorm folded), fp16 (``--precision fp16``'s graph)
    or int8 (``--precision int8``'s QDQ graph, calibrated on real images), created once."""
    name = "onnxruntime" if precision == "fp32" else f"onnxruntime-{precision}"
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise _Unavailable(str(MissingDependencyError("onnxruntime", "onnx", f"The {name} backend"))) from exc
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError as exc:
            raise _Unavailable(str(MissingDependencyError(module, "onnx", "Exporting to ONNX"))) from exc
    try:
        from resnet_hub.export.onnx import export_onnx_model
    except ImportError as exc:
        raise _Unavailable(f"ONNX export is not available in this install (resnet_hub.export.onnx: {exc})") from exc

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if precision == "int8":
            raise _Unavailable("onnxruntime-int8 is the QDQ graph for ONNX Runtime's CPU provider; run it with "
                               "--device cpu")
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise _Unavailable(
                "onnxruntime has no CUDAExecutionProvider here; install onnxruntime-gpu for --device cuda"
            )
        providers.insert(0, "CUDAExecutionProvider")
    calibrated = ""
    if precision == "int8":
        path, calibrated = _int8_graph(model, x, workdir, calibration)
    else:
        path = export_onnx_model(
            model.cpu() if device.type != "cpu" else model,
            workdir / f"{name}.onnx",
            input_shape=tuple(x.shape),
            dynamic_batch=True,
            opset=20,
            exporter="dynamo",
            single_file=True,
            half=precision == "fp16",
        )
    if device.type != "cpu":
        model.to(device)
    session = ort.InferenceSession(str(path), sess_options=ort_session_options(threads), providers=providers)
    input_name = session.get_inputs()[0].name
    feed = {input_name: x.detach().cpu().numpy()}

    def call() -> torch.Tensor:
        return torch.from_numpy(session.run(None, feed)[0])

    graph = {"fp32": "fp32 graph, BatchNorm folded", "fp16": "fp16 graph with fp32 inputs/outputs",
             "int8": f"int8 QDQ graph{calibrated}"}[precision]
    return _Runner(
        name,
        f"ONNX Runtime {ort.__version__} ({providers[0]}, {graph}, dynamo export opset 20, graph optimisation ALL, "
        f"{threads} intra-op threads)",
        call,
        arithmetic="int8" if precision == "int8" else ("gpu" if device.type == "cuda" else "fp32"),
    )


def ort_session_options(threads: int):
    """Session options of every ONNX Runtime backend: all graph optimisations, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # ORT's pool otherwise keeps spinning after run() returns, stealing the cores from whichever backend
    # is timed next; a benchmark that interleaves backends must not let one slow the others.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _int8_graph(model: nn.Module, x: torch.Tensor, workdir: Path, calibration: _Calibration | None
                ) -> tuple[Path, str]:
    """The graph ``resnet-hub export --precision int8`` writes, calibrated on real images; (path, description)."""
    from resnet_hub.export.calibration import load_calibration
    from resnet_hub.export.int8_onnxruntime import quantize_for_cpu
    from resnet_hub.export.onnx import export_onnx_model

    if calibration is None or calibration.source is None:
        raise _Unavailable("onnxruntime-int8 needs calibration images and scikit-learn (for the built-in "
                           "'digits') is not installed: pass --calib-data DIR (a folder of images)")
    try:
        images, count, _ = load_calibration(calibration.source, calibration.data_config, limit=calibration.limit)
    except ResNetHubError as exc:
        raise _Unavailable(f"calibration data: {exc}") from exc
    fp32 = export_onnx_model(model.cpu(), workdir / "int8-source.onnx", input_shape=tuple(x.shape),
                             dynamic_batch=True, opset=20, exporter="dynamo", single_file=True)
    record = quantize_for_cpu(fp32, workdir / "onnxruntime-int8.onnx", images,
                              calibration_source=str(calibration.source))
    fused = sum(v for k, v in record.quantized_ops.items() if k != "QuantizeLinear")
    return workdir / "onnxruntime-int8.onnx", (
        f" (per-channel int8 weights, uint8 activations, reduce_range={record.reduce_range}, {fused} ops "
        f"quantized), calibrated on {count} images from '{calibration.source}'")


def _tensorrt_runner(model: nn.Module, x: torch.Tensor, device: torch.device, workdir: Path) -> _Runner:
    """An fp32 engine for exactly this batch size, built through ``export`` (which owns engine building)."""
    hint = "install it with: pip install 'resnet-hub[tensorrt]' on a machine with an NVIDIA GPU"
    if device.type != "cuda":
        raise _Unavailable(f"TensorRT needs an NVIDIA GPU: run with --device cuda on a machine with CUDA ({hint})")
    try:
        import tensorrt
    except ImportError as exc:
        raise _Unavailable(f"the 'tensorrt' package is not installed; {hint}") from exc
    try:
        from resnet_hub.export.tensorrt import TensorRTModule, benchmark_engine, cuda_environment
    except ImportError as exc:
        raise _Unavailable(f"TensorRT export is not available in this install (resnet_hub.export.tensorrt: {exc})") from exc
    batch = int(x.shape[0])
    here = cuda_environment(tensorrt, device)
    engine_bytes, _plan = benchmark_engine(model.cpu(), tuple(x.shape), workdir, here)
    model.to(device)
    engine = TensorRTModule(engine_bytes)
    return _Runner("tensorrt", f"TensorRT {here.tensorrt_version} engine, fp32, profile batch {batch} ({here.gpu_name})",
                   _torch_call(engine, x))


def _make_runners(
    name: str,
    backends: Sequence[str],
    ours: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    threads: int,
    compile: bool,
    workdir: Path,
    progress: ProgressFn,
    calibration: _Calibration | None = None,
) -> Iterator[tuple[str, _Runner | Exception, float]]:
    """Yield (backend, runner or the reason it is unavailable, setup seconds), baseline first."""
    from .inference import prepare_for_inference

    variant = get_variant(name)
    order: list[str] = []
    if variant.timm_name:
        order.append(BASELINE_TIMM)
    for backend in ("torch", *backends):
        if backend not in order and (backend in backends or not variant.timm_name):
            order.append(backend)
    for backend in order:
        progress(f"setting up {backend}")
        start = time.perf_counter()
        try:
            if backend == BASELINE_TIMM:
                peer, same = _timm_peer(name, ours, device)
                runner = _Runner(BASELINE_TIMM, f"timm {variant.timm_name}, eager (the baseline)",
                                 _torch_call(peer, x), is_baseline=True, weights_match=same)
            elif backend == "torch":
                runner = _Runner("torch", f"resnet-hub {name}, eager", _torch_call(ours, x),
                                 is_baseline=not variant.timm_name)
                if runner.is_baseline:
                    runner.description += " (the baseline: timm has no peer of this variant)"
            elif backend == "torch-optimized":
                fast = prepare_for_inference(ours, compile=compile)
                runner = _Runner("torch-optimized",
                                 "resnet-hub, BatchNorm folded + channels_last" + (" + torch.compile" if compile else ""),
                                 _torch_call(fast, x))
            elif backend == "onnxruntime":
                runner = _onnxruntime_runner(ours, x, threads, device, workdir)
            elif backend in ("onnxruntime-fp16", "onnxruntime-int8"):
                runner = _onnxruntime_runner(ours, x, threads, device, workdir, backend.rsplit("-", 1)[1],
                                             calibration)
            elif backend == "tensorrt":
                runner = _tensorrt_runner(ours, x, device, workdir)
            else:  # validated earlier
                raise BenchmarkError(f"unknown backend {backend}")
            runner.call()  # first call: lazy initialisation and compilation belong to setup
            if device.type == "cuda":
                torch.cuda.synchronize()
        except _Unavailable as exc:
            yield backend, exc, time.perf_counter() - start
            continue
        except Exception as exc:  # export or engine build failed: report it, measure the others
            if backend in (BASELINE_TIMM, "torch"):
                raise
            yield backend, _Unavailable(f"setup failed: {type(exc).__name__}: {exc}"), time.perf_counter() - start
            continue
        yield backend, runner, time.perf_counter() - start


# --- measurement ------------------------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), without needing numpy."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _timed_rounds(
    runners: Sequence[_Runner],
    iters: int | None,
    min_time_s: float | None,
    sync: Callable[[], None],
    progress: ProgressFn,
    min_iters: int = 3,
) -> dict[str, list[float]]:
    """Time one call of every runner per round; stop after ``iters`` rounds, or once every runner has
    run for ``min_time_s`` seconds in total (and at least ``min_iters`` rounds)."""
    samples: dict[str, list[float]] = {r.name: [] for r in runners}
    rounds = 0
    while True:
        # Rotate the order each round, so every backend follows every other equally often (a runtime's
        # threads winding down, or caches it left cold, then cost all backends alike).
        shift = rounds % len(runners)
        for runner in [*runners[shift:], *runners[:shift]]:
            start = time.perf_counter()
            runner.call()
            sync()
            samples[runner.name].append(time.perf_counter() - start)
        rounds += 1
        progress(f"round {rounds}" + (f"/{iters}" if iters else ""))
        if iters is not None:
            if rounds >= iters:
                break
        elif rounds >= min_iters and all(sum(s) >= (min_time_s or 0.0) for s in samples.values()):
            break
    return samples


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def parse_backends(backends: str | Iterable[str]) -> list[str]:
    """'torch,onnxruntime' -> ['torch', 'onnxruntime'], rejecting unknown names with the known ones."""
    names = [b.strip() for b in (backends.split(",") if isinstance(backends, str) else backends) if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise BenchmarkError(
            f"Unknown backend(s): {', '.join(unknown) or '(none given)'}. Choose from: {', '.join(BACKENDS)}"
        )
    return list(dict.fromkeys(names))


def default_threads() -> int:
    """Physical cores available to this process: more intra-op threads than that only adds contention."""
    return _physical_cores(_cpuinfo())


def run_benchmark(
    name: str,
    backends: str | Iterable[str] = ("torch", "torch-optimized", "onnxruntime"),
    *,
    batch_size: int = 8,
    img_size: int = 224,
    device: str = "cpu",
    warmup: int = 3,
    iters: int | None = None,
    min_time_s: float | None = 5.0,
    threads: int | None = None,
    compile: bool = False,
    peak_gflops: float | None = None,
    seed: int = 0,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    progress: ProgressFn | None = None,
    calib_data: str | os.PathLike | None = None,
    calib_limit: int = DEFAULT_BENCH_CALIB_LIMIT,
) -> BenchmarkReport:
    """Measure latency and throughput of ``name`` on each backend, against timm's eager peer.

    ``iters`` fixes the number of timed rounds; otherwise rounds repeat until every backend has run
    ``min_time_s`` seconds. ``weights`` (a safetensors file) or ``pretrained`` time the model a user deploys;
    speed does not depend on the weights, but the reported max |diff| of each backend does. Unavailable backends
    (missing package, no GPU) are reported with the reason instead of failing the run. ``onnxruntime-int8``
    calibrates on ``calib_data`` (a folder of images; default the built-in ``digits`` when scikit-learn is
    installed), ``calib_limit`` images: real images even for random weights, since activation ranges measured on
    noise are not those of images.
    """
    from .factory import create_model

    progress = progress or (lambda message: None)
    requested = parse_backends(backends)
    if batch_size < 1 or img_size < 8 or warmup < 0 or (iters is not None and iters < 1):
        raise BenchmarkError("batch size and iterations must be >= 1, warm-up >= 0 and the image size >= 8")
    get_variant(name)
    if device not in ("cpu", "cuda"):
        raise BenchmarkError(f"--device must be 'cpu' or 'cuda', got '{device}'")
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
    threads = threads or default_threads()
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    stats = model_stats(name.split(".", 1)[0], img_size)
    calib_source = _calibration_source(calib_data) if "onnxruntime-int8" in requested else None
    if calib_limit < 1:
        raise BenchmarkError(f"--calib-limit must be >= 1, got {calib_limit}")

    environment = _environment()
    results: list[BackendResult] = []
    runners: list[_Runner] = []
    with _torch_threads(threads), tempfile.TemporaryDirectory(prefix="resnet-hub-bench-") as tmp:
        torch.manual_seed(seed)
        WeightsChoiceError.check(weights, pretrained)
        ours = create_model(name, weights=weights, pretrained=pretrained).eval().to(dev)
        x = torch.randn(batch_size, ours.in_chans, img_size, img_size, generator=torch.Generator().manual_seed(seed))
        x = x.to(dev)
        with torch.inference_mode():
            reference = ours(x).float().cpu()
        setup: dict[str, float] = {}
        calibration = _Calibration(calib_source, calib_limit, _data_config(ours, img_size))
        for backend, runner, seconds in _make_runners(
            name, requested, ours, x, dev, threads, compile, Path(tmp), progress, calibration
        ):
            setup[backend] = seconds
            if isinstance(runner, Exception):
                results.append(BackendResult(backend=backend, available=False, reason=str(runner)))
            else:
                runners.append(runner)
        for runner in runners:
            progress(f"warming up {runner.name}")
            for _ in range(warmup):
                runner.call()
            sync()
        ceilings: dict[str, Ceiling] = {}
        if dev.type == "cpu":
            progress("measuring the GEMM ceilings")
            ceilings = measure_ceilings(threads, [r.arithmetic for r in runners], peak_gflops)
        elif peak_gflops:
            from .ceilings import user_ceiling

            ceilings = {"fp32": user_ceiling(peak_gflops)}
        samples = _timed_rounds(runners, iters, None if iters else min_time_s, sync, progress)
        if dev.type == "cpu":
            progress("measuring the GEMM ceilings again")
            ceilings = measure_ceilings(threads, [r.arithmetic for r in runners], peak_gflops, ceilings)
        for runner in runners:
            output = runner.call().float().cpu()
            diff = float((output - reference).abs().max()) if runner.weights_match else None
            results.append(_summarise(runner, samples[runner.name], setup[runner.name], batch_size, diff))
            results[-1].arithmetic = runner.arithmetic

    baseline = next(r for r in results if r.is_baseline)
    for r in results:
        if r.available and r.median_ms:
            r.speedup = baseline.median_ms / r.median_ms  # type: ignore[operator]
            r.achieved_gflops = stats.gflops * r.throughput  # type: ignore[operator]
            ceiling = ceilings.get(r.arithmetic)
            r.ceiling_fraction = r.achieved_gflops / ceiling.gops if ceiling else None
    order = {b: i for i, b in enumerate([BASELINE_TIMM, *BACKENDS])}
    results.sort(key=lambda r: order.get(r.backend, len(order)))
    variant = get_variant(name)
    if variant.timm_name:
        same_weights = next(rn for rn in runners if rn.is_baseline).weights_match
        note = f"timm '{variant.timm_name}' eager, same architecture" + (
            ", same weights" if same_weights else ", its own random weights (checkpoint layouts differ)"
        )
    else:
        note = f"timm has no peer of {name}; the baseline is resnet-hub's own eager model"
    environment["load_average_end"] = _load_average()
    notes = _caveats(results, ceilings, threads)
    return BenchmarkReport(
        model=name,
        baseline=baseline.backend,
        baseline_note=note,
        device=str(dev),
        batch_size=batch_size,
        img_size=img_size,
        threads=threads,
        warmup=warmup,
        iters=len(next(iter(samples.values()))) if samples else 0,
        min_time_s=None if iters else min_time_s,
        gflops_per_image=stats.gflops,
        ceilings=ceilings,
        results=results,
        requested=requested,
        environment=environment,
        notes=notes,
    )


def _calibration_source(calib_data: str | os.PathLike | None) -> str | None:
    """The int8 backend's calibration images: the given folder (checked now), else ``digits`` if scikit-learn is
    installed, else None (the backend then says what to pass)."""
    if calib_data is None:
        import importlib.util

        return DEFAULT_CALIB_DATA if importlib.util.find_spec("sklearn") is not None else None
    if str(calib_data) == DEFAULT_CALIB_DATA:
        return DEFAULT_CALIB_DATA
    try:
        from resnet_hub.export.calibration import find_images
    except ImportError:  # the export package is absent: the backend reports it as unavailable
        return str(calib_data)
    try:
        find_images(calib_data, 1)
    except ResNetHubError as exc:
        raise BenchmarkError(f"--calib-data: {exc}") from exc
    return str(calib_data)


def _data_config(model: nn.Module, img_size: int) -> dict[str, Any]:
    """timm's eval preprocessing of ``model``'s weights at the benchmark's image size (for calibration)."""
    from timm.data import resolve_data_config

    config = dict(resolve_data_config({}, model=model))
    config["input_size"] = (config["input_size"][0], img_size, img_size)
    return config


def _caveats(results: list[BackendResult], ceilings: dict[str, Ceiling], threads: int) -> list[str]:
    """What a reader must know before trusting the absolute numbers."""
    notes = []
    over = [r.backend for r in results if (r.ceiling_fraction or 0) > 1.05]
    if over:
        notes.append(f"{', '.join(over)} ran faster than the GEMM ceiling measured for its arithmetic (before and "
                     "after the timed rounds): other processes held the cores while the ceiling was measured, or "
                     "the backend's convolution kernels beat the library GEMMs measured; re-run on a quiet "
                     "machine, or pass --peak-gflops")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if load > cpus + 1.0:  # our own threads account for up to `cpus` of it
            notes.append(f"1-minute load average {load:.1f} on {cpus} CPUs: other processes competed for the cores; "
                         "absolute numbers are pessimistic and OpenMP-based torch suffers more than ONNX Runtime's "
                         "thread pool, so re-run on a quiet machine before quoting ratios")
    return notes


def _summarise(runner: _Runner, seconds: list[float], setup_s: float, batch: int, diff: float | None) -> BackendResult:
    latencies = [s * 1000 for s in seconds]
    median = statistics.median(latencies)
    return BackendResult(
        backend=runner.name,
        available=True,
        description=runner.description,
        is_baseline=runner.is_baseline,
        setup_s=setup_s,
        latencies_ms=latencies,
        median_ms=median,
        p90_ms=_percentile(latencies, 90),
        mean_ms=statistics.fmean(latencies),
        min_ms=min(latencies),
        throughput=batch / (median / 1000),
        max_abs_diff=diff,
    )


def _load_average() -> str:
    """1/5/15-minute load averages: how busy the machine was, to judge the absolute numbers."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else ""


def _environment() -> dict[str, str]:
    import timm

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cpu": next((p.get("model name", "") for p in _cpuinfo()), platform.processor()),
        "load_average": _load_average(),
    }
    with contextlib.suppress(ImportError):
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    return env
