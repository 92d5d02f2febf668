"""What a benchmark run hands back: per-backend results (img/s, ratio, share of the measured ceiling, gate) and the
conditions needed to read them, plus the one-line recommendation. Typed, so the CLI's table, ``--json`` and plots
all read the same object."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..ceilings import Ceiling


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
    precision: str = "fp32"  # the export precision whose gate applies
    gate_passed: bool | None = None  # None: not gated (the eager models are the reference)
    gate: str = ""  # what the gate measured, in words
    accuracy_delta: float | None = None  # top-1 points vs PyTorch eager (with eval data)


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
    gate_kind: str = ""  # 'accuracy on <data>' or 'parity with eager on the benchmark batch'
    recommended: str | None = None
    recommendation: str = ""

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

    def throughputs(self) -> dict[str, float]:
        """img/s per available backend (what a plot of the run draws against ``ceilings``)."""
        return {r.backend: r.throughput for r in self.results if r.available and r.throughput}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend(results: list[BackendResult], gate_kind: str) -> tuple[str | None, str]:
    """The fastest backend that passed its gate, as (name, one line); the eager models count as passed."""
    passed = [r for r in results if r.available and r.throughput and r.gate_passed is not False
              and (r.gate_passed or r.is_baseline or r.backend == "torch")]
    if not passed:
        return None, "recommendation: none (no backend ran)"
    best = max(passed, key=lambda r: r.throughput or 0.0)
    failed = [r.backend for r in results if r.gate_passed is False]
    gate = f"passed {best.precision} {gate_kind}" if best.gate_passed else "the eager reference"
    line = (f"recommendation: {best.backend} ({best.throughput:.1f} img/s, {best.speedup:.2f}x the baseline; "
            f"{gate}" + (f"; {', '.join(failed)} failed the gate" if failed else "") + ")")
    return best.backend, line


def caveats(results: list[BackendResult], ceilings: dict[str, Ceiling], threads: int) -> list[str]:
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
