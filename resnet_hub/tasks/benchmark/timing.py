"""Timing: interleaved rounds (one call of every backend per round, order rotated) and their summary."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from typing import Callable, Iterator, Sequence

import torch

from .common import ProgressFn, Runner
from .report import BackendResult


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), without needing numpy."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timed_rounds(
    runners: Sequence[Runner],
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
def torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def summarise(runner: Runner, seconds: list[float], setup_s: float, batch: int, diff: float | None) -> BackendResult:
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
        p90_ms=percentile(latencies, 90),
        mean_ms=statistics.fmean(latencies),
        min_ms=min(latencies),
        throughput=batch / (median / 1000),
        max_abs_diff=diff,
        arithmetic=runner.arithmetic,
        precision=runner.precision,
    )
