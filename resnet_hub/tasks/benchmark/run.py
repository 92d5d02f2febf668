"""``run_benchmark``: set up every backend, time them interleaved, measure the ceilings, gate, recommend."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..ceilings import Ceiling
from ...weights.lookup import get_variant
from ...errors import ResNetHubError, WeightsChoiceError
from ...zoo.stats import model_stats
from .backend_onnxruntime import onnxruntime_runner
from .backend_openvino import openvino_runner
from .backend_tensorrt import tensorrt_runner
from .backend_torch import BASELINE_TIMM, eager_runner, optimized_runner, timm_runner
from .ceilings import measure_ceilings
from .common import (DEFAULT_BENCH_CALIB_LIMIT, DEFAULT_CALIB_DATA, BenchmarkError, Calibration, ProgressFn, Runner,
                     Unavailable, torch_logits)
from .machine import default_threads, environment, load_average
from .report import BackendResult, BenchmarkReport, caveats, recommend
from .timing import summarise, timed_rounds, torch_threads

BACKENDS: tuple[str, ...] = ("torch", "torch-optimized", "onnxruntime", "onnxruntime-fp16", "onnxruntime-int8",
                             "openvino", "openvino-int8", "tensorrt")
INT8_BACKENDS = ("onnxruntime-int8", "openvino-int8")
# Allowed top-1 drop in points per precision: the export's accuracy gate (export/accuracy.py), unchanged.
MAX_ACCURACY_DROP = {"fp32": 0.1, "fp16": 0.5, "int8": 1.0, "trt-fp32": 0.5}


def parse_backends(backends: str | Iterable[str]) -> list[str]:
    """'torch,onnxruntime' -> ['torch', 'onnxruntime'], rejecting unknown names with the known ones."""
    names = [b.strip() for b in (backends.split(",") if isinstance(backends, str) else backends) if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise BenchmarkError(
            f"Unknown backend(s): {', '.join(unknown) or '(none given)'}. Choose from: {', '.join(BACKENDS)}"
        )
    return list(dict.fromkeys(names))


def make_runners(
    name: str,
    backends: Sequence[str],
    ours: nn.Module,
    x: torch.Tensor,
    device: torch.device,
    threads: int,
    compile: bool,
    workdir: Path,
    progress: ProgressFn,
    calibration: Calibration | None = None,
) -> Iterator[tuple[str, Runner | Exception, float]]:
    """Yield (backend, runner or the reason it is unavailable, setup seconds), baseline first."""
    variant = get_variant(name)
    order: list[str] = []
    if variant.timm_name:
        order.append(BASELINE_TIMM)
    for backend in ("torch", *backends):
        if backend not in order and (backend in backends or not variant.timm_name):
            order.append(backend)
    for index, backend in enumerate(order, 1):
        progress(f"setting up {backend} ({index}/{len(order)})")
        start = time.perf_counter()
        try:
            if backend == BASELINE_TIMM:
                runner = timm_runner(name, ours, x, device)
            elif backend == "torch":
                runner = eager_runner(name, ours, x, device)
            elif backend == "torch-optimized":
                runner = optimized_runner(ours, x, device, compile)
            elif backend == "onnxruntime":
                runner = onnxruntime_runner(ours, x, threads, device, workdir)
            elif backend in ("onnxruntime-fp16", "onnxruntime-int8"):
                runner = onnxruntime_runner(ours, x, threads, device, workdir, backend.rsplit("-", 1)[1], calibration)
            elif backend == "openvino":
                runner = openvino_runner(ours, x, threads, device, workdir)
            elif backend == "openvino-int8":
                runner = openvino_runner(ours, x, threads, device, workdir, "int8", calibration)
            elif backend == "tensorrt":
                runner = tensorrt_runner(ours, x, device, workdir)
            else:  # validated earlier
                raise BenchmarkError(f"unknown backend {backend}")
            runner.call()  # first call: lazy initialisation and compilation belong to setup
            if device.type == "cuda":
                torch.cuda.synchronize()
        except Unavailable as exc:
            yield backend, exc, time.perf_counter() - start
            continue
        except Exception as exc:  # export or engine build failed: report it, measure the others
            if backend in (BASELINE_TIMM, "torch"):
                raise
            yield backend, Unavailable(f"setup failed: {type(exc).__name__}: {exc}"), time.perf_counter() - start
            continue
        yield backend, runner, time.perf_counter() - start


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
    eval_data: str | os.PathLike | None = None,
    eval_limit: int | None = None,
) -> BenchmarkReport:
    """Measure latency and throughput of ``name`` on each backend, against timm's eager peer, and recommend the
    fastest backend that passed its gate.

    ``iters`` fixes the number of timed rounds; otherwise rounds repeat until every backend has run
    ``min_time_s`` seconds. ``weights`` (a safetensors file) or ``pretrained`` time the model a user deploys;
    speed does not depend on the weights, but the reported max |diff| of each backend does. Unavailable backends
    (missing package, no GPU) are reported with the reason instead of failing the run. The int8 backends
    calibrate on ``calib_data`` (a folder of images; default the built-in ``digits`` when scikit-learn is
    installed), ``calib_limit`` images: real images even for random weights, since activation ranges measured on
    noise are not those of images.

    The gate: with ``eval_data`` (labelled images, for weights that classify them), each backend's top-1 on them
    at ``img_size`` against our eager model's, allowed the export's drop per precision (fp32 0.1, fp16 0.5, int8
    1.0 points); without it, logit parity with our eager model on the benchmark batch at the export's tolerance
    per precision (``export/verify.py``).
    """
    from ...zoo.model_loading import load_model

    progress = progress or (lambda message: None)
    requested = parse_backends(backends)
    if batch_size < 1 or img_size < 8 or warmup < 0 or (iters is not None and iters < 1):
        raise BenchmarkError("batch size and iterations must be >= 1, warm-up >= 0 and the image size >= 8")
    get_variant(name)
    if device not in ("cpu", "cuda"):
        raise BenchmarkError(f"--device must be 'cpu' or 'cuda', got '{device}'")
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
    WeightsChoiceError.check(weights, pretrained)  # one rule, one message (also in export, predict, finetune)
    threads = threads or default_threads()
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    stats = model_stats(name.split(".", 1)[0], img_size)
    calib_source = _calibration_source(calib_data) if set(requested) & set(INT8_BACKENDS) else None
    if calib_limit < 1:
        raise BenchmarkError(f"--calib-limit must be >= 1, got {calib_limit}")

    env = environment()
    results: list[BackendResult] = []
    runners: list[Runner] = []
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="resnet-hub-bench-") as tmp:
        torch.manual_seed(seed)
        progress(f"building {name}")
        loaded = load_model(name, weights=weights, pretrained=pretrained)
        ours = loaded.model.eval().to(dev)
        data_config = loaded.data_config(img_size)
        prepared = _eval_data(eval_data, eval_limit, data_config, loaded, progress) if eval_data else None
        x = torch.randn(batch_size, ours.in_chans, img_size, img_size, generator=torch.Generator().manual_seed(seed))
        x = x.to(dev)
        with torch.inference_mode():
            reference = ours(x).float().cpu()
        setup: dict[str, float] = {}
        calibration = Calibration(calib_source, calib_limit, data_config)
        for backend, runner, seconds in make_runners(
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
            from ..ceilings import user_ceiling

            ceilings = {"fp32": user_ceiling(peak_gflops)}
        progress(f"timing {len(runners)} backends interleaved"
                 + (f", {iters} rounds" if iters else f", at least {min_time_s:g} s each"))
        samples = timed_rounds(runners, iters, None if iters else min_time_s, sync, progress)
        if dev.type == "cpu":
            progress("measuring the GEMM ceilings again")
            ceilings = measure_ceilings(threads, [r.arithmetic for r in runners], peak_gflops, ceilings)
        for runner in runners:
            output = runner.call().float().cpu()
            diff = float((output - reference).abs().max()) if runner.weights_match else None
            results.append(summarise(runner, samples[runner.name], setup[runner.name], batch_size, diff))
            if not (runner.is_baseline or runner.name == "torch"):
                progress(f"gating {runner.name}")
                _gate(results[-1], runner, output, reference, prepared, ours, dev)
        gate_kind = (f"accuracy gate on {eval_data} (top-1 vs PyTorch eager)" if prepared is not None
                     else "parity with PyTorch eager on the benchmark batch")

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
    env["load_average_end"] = load_average()
    recommended, line = recommend(results, gate_kind)
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
        environment=env,
        notes=caveats(results, ceilings, threads),
        gate_kind=gate_kind,
        recommended=recommended,
        recommendation=line,
    )


def _eval_data(eval_data: str | os.PathLike, limit: int | None, data_config: dict[str, Any], loaded: Any,
               progress: ProgressFn) -> Any:
    """Labelled images at the benchmark's image size, preprocessed once for every backend's gate."""
    from ...errors import DatasetError, EvaluationError
    from ..evaluate import class_mapping, prepare

    progress(f"reading labelled images from {eval_data}")
    try:
        return prepare(eval_data, data_config,
                       lambda classes: class_mapping(classes, loaded.label_names, loaded.num_classes), limit=limit)
    except (DatasetError, EvaluationError) as exc:
        raise BenchmarkError(f"--eval-data {eval_data}: {exc}") from exc


def _gate(result: BackendResult, runner: Runner, output: torch.Tensor, reference: torch.Tensor, prepared: Any,
          ours: nn.Module, device: torch.device) -> None:
    """Fill in ``result``'s gate: accuracy on labelled images, else parity on the benchmark batch."""
    from resnet_hub.export.verify import FP16, FP32, INT8, TRT_FP32, compare_logits

    if prepared is not None and runner.logits is not None:
        from resnet_hub.tasks.evaluate import score_many

        # One streamed pass: each batch is decoded once and both models see the same tensor (as the export gate).
        reference_eval, artifact_eval = score_many([torch_logits(ours, device), runner.logits], prepared,
                                                   targets=["eager", runner.name], runtimes=["PyTorch", runner.name],
                                                   batch_size=32)
        reference_top1, top1 = reference_eval.top1, artifact_eval.top1
        delta = 100.0 * (top1 - reference_top1)
        allowed = MAX_ACCURACY_DROP.get(runner.precision, 0.1)
        result.accuracy_delta = delta
        result.gate_passed = -delta <= allowed + 1e-9
        result.gate = (f"top-1 {reference_top1:.2%} -> {top1:.2%} ({delta:+.2f} points, allowed drop {allowed:g}) "
                       f"on {reference_eval.n} images")
        return
    if not runner.weights_match:
        return
    tolerance = {"fp32": FP32, "fp16": FP16, "int8": INT8, "trt-fp32": TRT_FP32}.get(runner.precision, FP32)
    check = compare_logits(reference.numpy(), output.numpy(), tolerance)
    result.gate_passed = check.passed
    result.gate = (f"max |diff|/range {check.max_rel_diff:.1e} (<= {tolerance.max_rel_diff:g}), top-1 agreement "
                   f"{check.top1_agreement:.0%} on the benchmark batch")


def _calibration_source(calib_data: str | os.PathLike | None) -> str | None:
    """The int8 backends' calibration images: the given folder (checked now), else ``digits`` if scikit-learn is
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


__all__ = ["BACKENDS", "make_runners", "parse_backends", "run_benchmark"]
