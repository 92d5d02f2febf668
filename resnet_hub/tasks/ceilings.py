"""Measured arithmetic ceilings of this machine: how fast a large GEMM runs, in fp32 and in int8.

A "share of peak" computed from the clock in /proc/cpuinfo and an assumed FLOPs-per-cycle exceeds 100 % on
CPUs that boost (and VMs report the base clock), and says nothing about int8 at all. What a benchmark can
honestly compare a network with is the rate the libraries it uses reach on the same threads on the easiest
possible work, a large matrix product, taking the fastest implementation installed:

- fp32: ``torch.mm`` and ONNX Runtime's ``MatMul`` (MLAS sgemm). They differ more than one would guess: on the
  AMD EPYC (AVX-512) CI machine torch's sgemm ran at ~95 GFLOP/s per core and MLAS's at ~210, so a ceiling
  from ``torch.mm`` alone would put ONNX Runtime above 100 %.
- int8: ONNX Runtime's ``MatMulInteger`` (uint8 activations x int8 constant weights, int32 accumulation: the
  MLAS QGEMM kernels its ``QLinearConv`` runs on, VNNI where the CPU has it) and ``torch._int_mm`` where it
  runs on CPU.

Each candidate is timed at two sizes (the smaller fits the caches better), best of a few calls after a warm-up:
a ceiling is what the machine *can* do, and load from other processes only lowers it. Operations are
2 x multiply-accumulates for both arithmetics, as for the models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

GEMM_SIZES = (1024, 2048)
REPEATS = 3


@dataclass(frozen=True)
class Ceiling:
    """An arithmetic ceiling in G(FL)OP/s: the fastest candidate GEMM, and every candidate's rate."""

    arithmetic: str  # 'fp32' or 'int8'
    gops: float
    source: str  # 'measured' or 'user'
    method: str  # the candidate that set the ceiling (or 'given with --peak-gflops')
    candidates: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        others = ", ".join(f"{name} {rate:.0f}" for name, rate in self.candidates.items()
                           if not self.method.startswith(name))
        return (f"{self.arithmetic} ceiling {self.gops:.0f} GOP/s ({self.source}: {self.method}"
                + (f"; also measured: {others}" if others else "") + ")")


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _best_rate(call: Callable[[], object], ops: float, repeats: int) -> float:
    call()  # warm-up: first-call allocation, weight pre-packing
    return ops / min(_timed(call) for _ in range(repeats)) / 1e9


def _ort_session(nodes, inputs, outputs, initializers, threads: int):
    import onnxruntime as ort
    from onnx import helper

    graph = helper.make_graph(nodes, "gemm", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _fp32_candidates(threads: int, n: int, repeats: int) -> Iterator[tuple[str, float]]:
    import torch

    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=generator), torch.randn(n, n, generator=generator)
    with torch.inference_mode():
        yield f"torch.mm {n}^3", _best_rate(lambda: torch.mm(a, b), 2.0 * n**3, repeats)
    try:  # ONNX Runtime is optional (the onnx extra)
        from onnx import TensorProto, helper, numpy_helper

        session = _ort_session([helper.make_node("MatMul", ["a", "b"], ["y"])],
                               [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
                               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
                               [numpy_helper.from_array(b.numpy(), "b")], threads)
    except ImportError:
        return
    feed = {"a": a.numpy()}
    yield f"onnxruntime MatMul {n}^3", _best_rate(lambda: session.run(None, feed), 2.0 * n**3, repeats)


def _int8_candidates(threads: int, n: int, repeats: int) -> Iterator[tuple[str, float]]:
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    weights = rng.integers(-127, 128, (n, n), dtype=np.int8)
    activations = rng.integers(0, 256, (n, n), dtype=np.uint8)
    try:  # ONNX Runtime is optional (the onnx extra)
        from onnx import TensorProto, helper, numpy_helper

        session = _ort_session(
            [helper.make_node("MatMulInteger", ["a", "b", "a_zero_point"], ["y"])],
            [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
            [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
            [numpy_helper.from_array(weights, "b"), numpy_helper.from_array(np.array(128, np.uint8), "a_zero_point")],
            threads)
    except ImportError:
        pass
    else:
        feed = {"a": activations}
        yield f"onnxruntime MatMulInteger u8s8 {n}^3", _best_rate(lambda: session.run(None, feed), 2.0 * n**3,
                                                                  repeats)
    a = torch.from_numpy(activations.view(np.int8).copy())
    b = torch.from_numpy(weights)
    try:
        torch._int_mm(a[:32, :32], b[:32, :32])
    except (RuntimeError, AttributeError):  # no CPU kernel in this torch build
        return
    yield f"torch._int_mm s8s8 {n}^3", _best_rate(lambda: torch._int_mm(a, b), 2.0 * n**3, repeats)


def measure_ceiling(arithmetic: str, threads: int, sizes: tuple[int, ...] = GEMM_SIZES,
                    repeats: int = REPEATS) -> Ceiling | None:
    """The fastest GEMM of ``arithmetic`` ('fp32' or 'int8') on ``threads`` threads; None if none can run."""
    import torch

    candidates_of = {"fp32": _fp32_candidates, "int8": _int8_candidates}[arithmetic]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rates = dict(item for n in sizes for item in candidates_of(threads, n, repeats))
    finally:
        torch.set_num_threads(previous)
    if not rates:
        return None
    best = max(rates, key=rates.__getitem__)
    return Ceiling(arithmetic, rates[best], "measured", f"{best}, {threads} threads, best of {repeats}",
                   {name: round(rate, 1) for name, rate in rates.items()})


def user_ceiling(gflops: float) -> Ceiling:
    return Ceiling("fp32", float(gflops), "user", "given with --peak-gflops")
