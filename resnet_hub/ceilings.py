"""Measured arithmetic ceilings of this machine: how fast a large GEMM runs, in fp32 and in int8.

A "share of peak" computed from the clock in /proc/cpuinfo and an assumed FLOPs-per-cycle exceeds 100 % on
CPUs that boost (and VMs report the base clock), and says nothing about int8 at all. What a benchmark can
honestly compare a network with is the rate the same libraries reach on the same threads on the easiest
possible work, one large matrix product:

- fp32: ``torch.mm`` of two 2048 x 2048 matrices (oneDNN / MKL sgemm), the kernel family torch's and ONNX
  Runtime's convolutions are built on;
- int8: ONNX Runtime's ``MatMulInteger`` (uint8 activations x int8 constant weights, int32 accumulation), the
  MLAS QGEMM kernels that its ``QLinearConv`` / QDQ convolutions run on (VNNI where the CPU has it).

Each is the best of a few timed calls after a warm-up (a ceiling is what the machine *can* do; load from other
processes only lowers it). 2 x multiply-accumulates count as operations for both, as for the models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

GEMM_SIZE = 2048
REPEATS = 5


@dataclass(frozen=True)
class Ceiling:
    """An arithmetic ceiling in G(FL)OP/s and how it was obtained."""

    arithmetic: str  # 'fp32' or 'int8'
    gops: float
    source: str  # 'measured' or 'user'
    method: str

    def describe(self) -> str:
        return f"{self.arithmetic} ceiling {self.gops:.0f} GOP/s ({self.source}: {self.method})"


def _best_rate(call: Callable[[], object], ops: float, repeats: int) -> float:
    call()  # warm-up: first-call allocation, weight pre-packing
    best = min(_timed(call) for _ in range(repeats))
    return ops / best / 1e9


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure_fp32_gemm(threads: int, n: int = GEMM_SIZE, repeats: int = REPEATS) -> Ceiling:
    """fp32 GEMM rate of ``torch.mm`` (n x n x n) on ``threads`` intra-op threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=generator)
        b = torch.randn(n, n, generator=generator)
        with torch.inference_mode():
            rate = _best_rate(lambda: torch.mm(a, b), 2.0 * n**3, repeats)
    finally:
        torch.set_num_threads(previous)
    return Ceiling("fp32", rate, "measured",
                   f"torch.mm {n}x{n}x{n} fp32, {threads} threads, best of {repeats}, torch {torch.__version__}")


def measure_int8_gemm(threads: int, n: int = GEMM_SIZE, repeats: int = REPEATS) -> Ceiling | None:
    """int8 GEMM rate of ONNX Runtime's MatMulInteger (uint8 x constant int8 -> int32), or None without ORT."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    weights = rng.integers(-127, 128, (n, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "a_zero_point"], ["y"])], "int8_gemm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
        [numpy_helper.from_array(weights, "b"), numpy_helper.from_array(np.array(128, np.uint8), "a_zero_point")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}
    rate = _best_rate(lambda: session.run(None, feed), 2.0 * n**3, repeats)
    return Ceiling("int8", rate, "measured",
                   f"ONNX Runtime {ort.__version__} MatMulInteger {n}x{n}x{n} uint8 x int8, {threads} threads, "
                   f"best of {repeats}")


def user_ceiling(gflops: float) -> Ceiling:
    return Ceiling("fp32", float(gflops), "user", "given with --peak-gflops")
