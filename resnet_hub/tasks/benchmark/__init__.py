"""Inference speed of a variant on several backends, measured against timm's own eager model.

Every number is relative to a baseline measured in the same run, on the same input and the same
threads: timm's eager model of the same architecture (``timm resnet50`` for ``myresnet50``), or our own
eager model for the variants timm does not have. Backends are timed *interleaved* (one call of each in
turn, repeated), so a burst of load from other processes slows every backend alike instead of
skewing one of them; absolute numbers on a shared machine are still only as good as the machine's
quiet moments, which is why ratios are the headline.

Each backend's rate is also put against a *measured* ceiling of its arithmetic on the same threads
(:mod:`resnet_hub.tasks.ceilings`: a large fp32 ``torch.mm``, and ONNX Runtime's int8 ``MatMulInteger`` for the
int8 backends), so "how close to the machine's limit" needs no assumed clock or FLOPs per cycle. The operations
per image count convolutions and the classifier (``resnet_hub.zoo.stats``), two per multiply-accumulate, whatever
the precision. The CPU's ISA (AVX2 / AVX-512 / VNNI / AMX / bf16) is part of the report: no figure without it.

Every runtime backend is timed the way users run it: the session or compiled model is created once (export,
quantization and compilation are setup, reported apart), with the benchmark's thread count, warm-up calls excluded.
The run ends with a recommendation: the fastest backend that passed its gate (accuracy on labelled images with
``eval_data``, else parity with the eager model).

One module per job: ``run`` (orchestration), ``backend_*`` (one per runtime), ``timing``, ``ceilings``,
``machine`` (cores, ISA, load), ``report`` (the typed result).
"""

from __future__ import annotations

from .ceilings import measure_ceilings
from .common import DEFAULT_BENCH_CALIB_LIMIT, DEFAULT_CALIB_DATA, BenchmarkError
from .machine import default_threads
from .report import BackendResult, BenchmarkReport
from .run import BACKENDS, parse_backends, run_benchmark
from .timing import percentile as _percentile

__all__ = [
    "BACKENDS",
    "DEFAULT_BENCH_CALIB_LIMIT",
    "DEFAULT_CALIB_DATA",
    "BackendResult",
    "BenchmarkError",
    "BenchmarkReport",
    "_percentile",
    "default_threads",
    "measure_ceilings",
    "parse_backends",
    "run_benchmark",
]
