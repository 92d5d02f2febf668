"""Inference speed of a variant on several backends, measured against timm's own eager model.

Every number is relative to a baseline measured in the same run, on the same input and the same
threads: timm's eager model of the same architecture (``timm resnet50`` for ``myresnet50``), or our own
eager model for the variants timm does not have. Backends are timed *interleaved* (one call of each in
turn, repeated), so a burst of load from other processes slows every backend alike instead of
skewing one of them; absolute numbers on a shared machine are still only as good as the machine's
quiet moments, which is why ratios are the headline.

The share of peak FLOP/s puts the numbers in physical terms. The peak is an estimate: physical
cores x clock x fp32 FLOPs per cycle per core from the CPU's vector extensions (2 FMA pipes: AVX-512 ->
64, AVX2+FMA -> 32, AVX -> 16, else 8). The FLOPs per image count convolutions and the classifier
(``resnet_hub.stats``), two per multiply-accumulate.
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

from .configs import get_variant
from .errors import MissingDependencyError, ResNetHubError
from .stats import model_stats

__all__ = [
    "BACKENDS",
    "BackendResult",
    "BenchmarkError",
    "BenchmarkReport",
    "PeakFlops",
    "detect_peak_flops",
    "run_benchmark",
]

BACKENDS: tuple[str, ...] = ("torch", "torch-optimized", "onnxruntime", "tensorrt")
BASELINE_TIMM = "timm"

ProgressFn = Callable[[str], None]


class BenchmarkError(ResNetHubError):
    """The benchmark cannot run as asked (bad backend name, no CUDA for --device cuda, ...)."""


# --- peak FLOP/s ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeakFlops:
    """Theoretical fp32 peak of the CPU (or a user-given value) and how it was obtained."""

    gflops: float
    source: str  # "detected" or "user"
    cores: int | None = None
    ghz: float | None = None
    flops_per_cycle: int | None = None
    isa: str | None = None
    assumption: str = ""


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


def _clock_ghz(processors: list[dict[str, str]]) -> float | None:
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    with contextlib.suppress(OSError, ValueError):
        return int(max_freq.read_text().strip()) / 1e6  # kHz
    for p in processors:
        if "cpu MHz" in p:
            with contextlib.suppress(ValueError):
                return float(p["cpu MHz"]) / 1000
    return None


def detect_peak_flops(peak_gflops: float | None = None) -> PeakFlops | None:
    """fp32 peak of this machine's CPU, or ``peak_gflops`` when the caller knows better.

    Returns None when it cannot be estimated (not x86, no /proc/cpuinfo): a share of an invented peak
    would be worse than none.
    """
    if peak_gflops is not None:
        return PeakFlops(gflops=float(peak_gflops), source="user", assumption="peak given by the user")
    processors = _cpuinfo()
    flags = set(processors[0].get("flags", "").split()) if processors else set()
    if "avx512f" in flags:
        isa, per_cycle = "avx512", 64
    elif "avx2" in flags and "fma" in flags:
        isa, per_cycle = "avx2+fma", 32
    elif "avx" in flags:
        isa, per_cycle = "avx", 16
    elif "sse2" in flags:
        isa, per_cycle = "sse2", 8
    else:
        return None
    ghz = _clock_ghz(processors)
    if ghz is None:
        return None
    cores = _physical_cores(processors)
    return PeakFlops(
        gflops=cores * ghz * per_cycle,
        source="detected",
        cores=cores,
        ghz=round(ghz, 3),
        flops_per_cycle=per_cycle,
        isa=isa,
        assumption=(
            f"{cores} physical cores x {ghz:.2f} GHz x {per_cycle} fp32 FLOPs/cycle/core ({isa}: two FMA pipes "
            "assumed; CPUs that split 512-bit ops in two reach half). Override with --peak-gflops."
        ),
    )


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
    achieved_gflops: float | None = None
    peak_fraction: float | None = None
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
    peak: PeakFlops | None
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


def _onnxruntime_runner(
    model: nn.Module, x: torch.Tensor, threads: int, device: torch.device, workdir: Path
) -> _Runner:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise _Unavailable(str(MissingDependencyError("onnxruntime", "onnx", "The onnxruntime backend"))) from exc
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
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise _Unavailable(
                "onnxruntime has no CUDAExecutionProvider here; install onnxruntime-gpu for --device cuda"
            )
        providers.insert(0, "CUDAExecutionProvider")
    path = export_onnx_model(
        model.cpu() if device.type != "cpu" else model,
        workdir / "model.onnx",
        input_shape=tuple(x.shape),
        dynamic_batch=True,
        opset=20,
        exporter="dynamo",
        single_file=True,
        half=False,
    )
    if device.type != "cpu":
        model.to(device)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ORT's pool otherwise keeps spinning after run() returns, stealing the cores from whichever backend
    # is timed next; a benchmark that interleaves backends must not let one slow the others.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    input_name = session.get_inputs()[0].name
    feed = {input_name: x.detach().cpu().numpy()}

    def call() -> torch.Tensor:
        return torch.from_numpy(session.run(None, feed)[0])

    return _Runner(
        "onnxruntime",
        f"ONNX Runtime {ort.__version__} ({providers[0]}, dynamo export opset 20, graph optimisation ALL, "
        f"{threads} intra-op threads)",
        call,
    )


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
) -> BenchmarkReport:
    """Measure latency and throughput of ``name`` on each backend, against timm's eager peer.

    ``iters`` fixes the number of timed rounds; otherwise rounds repeat until every backend has run
    ``min_time_s`` seconds. ``weights`` (a safetensors file) or ``pretrained`` time the model a user deploys;
    speed does not depend on the weights, but the reported max |diff| of each backend does. Unavailable backends (missing package, no GPU) are reported with the reason
    instead of failing the run.
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
    peak = detect_peak_flops(peak_gflops) if (dev.type == "cpu" or peak_gflops) else None

    environment = _environment()
    results: list[BackendResult] = []
    runners: list[_Runner] = []
    with _torch_threads(threads), tempfile.TemporaryDirectory(prefix="resnet-hub-bench-") as tmp:
        torch.manual_seed(seed)
        if weights is not None and pretrained:
            raise BenchmarkError("pass either --weights FILE or --pretrained, not both")
        ours = create_model(name, weights=weights, pretrained=pretrained).eval().to(dev)
        x = torch.randn(batch_size, ours.in_chans, img_size, img_size, generator=torch.Generator().manual_seed(seed))
        x = x.to(dev)
        with torch.inference_mode():
            reference = ours(x).float().cpu()
        setup: dict[str, float] = {}
        for backend, runner, seconds in _make_runners(
            name, requested, ours, x, dev, threads, compile, Path(tmp), progress
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
        samples = _timed_rounds(runners, iters, None if iters else min_time_s, sync, progress)
        for runner in runners:
            output = runner.call().float().cpu()
            diff = float((output - reference).abs().max()) if runner.weights_match else None
            results.append(_summarise(runner, samples[runner.name], setup[runner.name], batch_size, diff))

    baseline = next(r for r in results if r.is_baseline)
    for r in results:
        if r.available and r.median_ms:
            r.speedup = baseline.median_ms / r.median_ms  # type: ignore[operator]
            r.achieved_gflops = stats.gflops * r.throughput  # type: ignore[operator]
            r.peak_fraction = r.achieved_gflops / peak.gflops if peak else None
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
    notes = _caveats(results, peak, threads)
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
        peak=peak,
        results=results,
        requested=requested,
        environment=environment,
        notes=notes,
    )


def _caveats(results: list[BackendResult], peak: PeakFlops | None, threads: int) -> list[str]:
    """What a reader must know before trusting the absolute numbers."""
    notes = []
    if peak is not None and peak.source == "detected" and any((r.peak_fraction or 0) > 1 for r in results):
        notes.append("a backend exceeds 100% of the estimated peak: the CPU runs above the clock it reports "
                     "(boost, or a VM showing the base clock), so the peak is underestimated; pass --peak-gflops")
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
