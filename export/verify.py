"""Evidence that an exported model computes what the PyTorch model computes.

An export is only reported done after (1) the ONNX checker accepts the file with ``full_check`` (shape
inference included) and (2) a runtime reproduces PyTorch's logits on the same inputs at more than one batch
size. Parity is judged by the largest absolute logit difference and by whether the predicted classes agree
(top-1 equal, top-5 sets overlapping): relative error is avoided on purpose because it explodes on logits
near zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Tolerance:
    """What 'matches PyTorch' means for one precision."""

    name: str
    max_abs: float
    min_top1_agreement: float
    min_top5_overlap: float


# fp32 graphs differ from eager PyTorch only by summation order and BatchNorm folding: ~1e-6 on O(1-10) logits.
FP32 = Tolerance("fp32", max_abs=1e-4, min_top1_agreement=1.0, min_top5_overlap=1.0)
# fp16 weights and activations carry ~3 significant digits; measured max |diff| on O(1-10) logits is ~1e-2.
# The class ranking is the user-visible contract: the top-1 class must agree, the top-5 sets nearly so.
FP16 = Tolerance("fp16", max_abs=5e-2, min_top1_agreement=1.0, min_top5_overlap=0.8)
# TensorRT fp32 engines may use TF32 tensor cores (on by default on Ampere and newer): 10-bit mantissas.
TRT_FP32 = Tolerance("trt-fp32 (tf32 allowed)", max_abs=1e-2, min_top1_agreement=1.0, min_top5_overlap=0.8)
# INT8 changes logits by design; what must survive is the ranking on most inputs. Not yet measured on a GPU
# in this project: treat as a floor that catches broken calibration, not as an accuracy claim.
INT8 = Tolerance("int8", max_abs=2.0, min_top1_agreement=0.5, min_top5_overlap=0.5)
TOLERANCES = {t.name: t for t in (FP32, FP16, TRT_FP32, INT8)}


@dataclass(frozen=True)
class ParityCheck:
    """One batch compared between PyTorch (the reference) and an exported runtime."""

    batch_size: int
    max_abs_diff: float
    mean_abs_diff: float
    reference_max_abs: float
    top1_agreement: float
    top5_overlap: float
    passed: bool


@dataclass(frozen=True)
class VerificationReport:
    """All checks of one artifact against PyTorch."""

    artifact: str
    runtime: str
    tolerance: Tolerance
    checks: tuple[ParityCheck, ...]
    checker: str = "not run"

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def max_abs_diff(self) -> float:
        return max(c.max_abs_diff for c in self.checks)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return tuple(c.batch_size for c in self.checks)

    def describe(self) -> str:
        top1 = min(c.top1_agreement for c in self.checks)
        top5 = min(c.top5_overlap for c in self.checks)
        return (f"{self.runtime} vs PyTorch at batch {', '.join(map(str, self.batch_sizes))}: max |diff| "
                f"{self.max_abs_diff:.2e} (<= {self.tolerance.max_abs:g}), top-1 {top1:.0%}, top-5 overlap {top5:.0%}")


def compare_logits(reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> ParityCheck:
    """Compare two (batch, classes) logit arrays."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"output shapes differ: reference {reference.shape}, candidate {candidate.shape}")
    diff = np.abs(reference - candidate)
    k = min(5, reference.shape[1])
    ref_top = np.argsort(-reference, axis=1)[:, :k]
    cand_top = np.argsort(-candidate, axis=1)[:, :k]
    top1 = float(np.mean(ref_top[:, 0] == cand_top[:, 0]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ref_top, cand_top)]))
    max_abs = float(diff.max())
    return ParityCheck(
        batch_size=int(reference.shape[0]),
        max_abs_diff=max_abs,
        mean_abs_diff=float(diff.mean()),
        reference_max_abs=float(np.abs(reference).max()),
        top1_agreement=top1,
        top5_overlap=overlap,
        passed=bool(max_abs <= tolerance.max_abs and top1 >= tolerance.min_top1_agreement
                    and overlap >= tolerance.min_top5_overlap),
    )


def verification_batches(traced_batch: int, dynamic_batch: bool) -> tuple[int, ...]:
    """Batch sizes to check: for a dynamic graph 1 and one above the traced size, so neither is the traced one;
    a static graph can only run its own size (checked on two independent input draws)."""
    if not dynamic_batch:
        return (traced_batch, traced_batch)
    return (1, traced_batch + 1)


def reference_inputs(batch_size: int, chw: Sequence[int], seed: int) -> torch.Tensor:
    """Inputs distributed like normalised images (zero mean, unit variance), reproducible by seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, *chw, generator=generator)


def compare_runtime(
    model: nn.Module,
    run: Callable[[torch.Tensor], np.ndarray],
    *,
    chw: Sequence[int],
    batch_sizes: Sequence[int],
    tolerance: Tolerance,
    artifact: str,
    runtime: str,
    checker: str = "not run",
    seed: int = 0,
) -> VerificationReport:
    """Run ``model`` (fp32 PyTorch on CPU) and ``run`` on the same inputs at each batch size."""
    checks = []
    was_training = model.training
    model.eval()
    try:
        for index, batch in enumerate(batch_sizes):
            x = reference_inputs(batch, chw, seed + index)
            with torch.no_grad():
                reference = model(x).float().numpy()
            checks.append(compare_logits(reference, run(x), tolerance))
    finally:
        model.train(was_training)
    return VerificationReport(artifact=artifact, runtime=runtime, tolerance=tolerance, checks=tuple(checks),
                              checker=checker)


def check_onnx_file(path: str | Path) -> str:
    """``onnx.checker.check_model`` by path (so external data and >2 GB files work), with shape inference."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    return "onnx.checker full_check passed"


def ort_runner(path: str | Path, input_name: str = "input") -> Callable[[torch.Tensor], np.ndarray]:
    """A function running the ONNX file in ONNX Runtime's CPU provider with all graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about fp16 casts inserted on CPU are expected, not news
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> np.ndarray:
        return session.run(None, {input_name: x.numpy().astype(np.float32)})[0]

    return run
