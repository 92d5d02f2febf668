"""Evidence that an exported model computes what the PyTorch model computes.

An export is only reported done after (1) the ONNX checker accepts the file with ``full_check`` (shape
inference included) and (2) a runtime reproduces PyTorch's logits on the same inputs at more than one batch
size, on real images when the export was given labelled or calibration data. Parity is judged by measures that
hold for any logit scale (the largest difference relative to each image's logit spread, the cosine of the logit
vectors) and by whether the predicted classes agree (top-1 equal, top-5 sets overlapping); element-wise relative
error is avoided on purpose because it explodes on logits near zero. Whether the artifact is still *accurate* is
a separate question, answered by the accuracy gate (``accuracy.py``) on labelled images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .bounds import against


@dataclass(frozen=True)
class Tolerance:
    """What 'matches PyTorch' means for one precision, in measures that do not depend on the logits' scale.

    ``max_rel_diff`` is the largest |diff| of an image divided by the spread of its reference logits
    (max - min): a trained model's logits span ~10-30 while a fresh model's span ~1, so an absolute bound is
    either meaningless on one or too strict on the other. ``min_cosine`` compares whole logit vectors; top-1
    agreement and top-5 overlap are the user-visible contract. ``measured`` says where each value comes from.
    """

    name: str
    max_rel_diff: float
    min_cosine: float
    min_top1_agreement: float
    min_top5_overlap: float
    measured: str = ""


# Measured on myresnet18 fine-tuned on digits (32 px, 96.9 % val top-1, logit range ~10) over its 359 val images:
# fp32 ONNX max rel 9.1e-7, cosine 1.0, top-1 100 %; fp16 max rel 4.5e-4, cosine 1.0, top-1 100 %;
# int8 (ORT QDQ, 512 calibration images) max rel 0.037, min cosine 0.9978, top-1 agreement 99.4 %, while
# int8 calibrated on blank images reached max rel 1.07 / cosine -0.66 / agreement 55 %, and on wrongly
# preprocessed images 1.18 / -0.74 / 15 %. The README's run (98.9 % top-1, benchmarks/digits_pipeline.py) measured
# 4.6e-7 (fp32), 5.8e-4 (fp16), 0.023 / cosine 0.9993 (int8). Thresholds leave ~100x (fp32), ~10x (fp16), ~7x
# (int8) margin.
FP32 = Tolerance("fp32", max_rel_diff=1e-4, min_cosine=0.99999, min_top1_agreement=1.0, min_top5_overlap=1.0,
                 measured="trained digits myresnet18: max rel 9.1e-7, cosine 1.000000, top-1 100%")
FP16 = Tolerance("fp16", max_rel_diff=5e-3, min_cosine=0.9999, min_top1_agreement=1.0, min_top5_overlap=0.8,
                 measured="trained digits myresnet18: max rel 4.5e-4, cosine 1.000000, top-1 100%")
# TensorRT fp32 engines may use TF32 tensor cores (10-bit mantissas, like fp16's): held to the fp16 bounds.
# Not measured on a GPU in this project yet.
TRT_FP32 = Tolerance("trt-fp32 (tf32 allowed)", max_rel_diff=5e-3, min_cosine=0.9999, min_top1_agreement=1.0,
                     min_top5_overlap=0.8, measured="not measured on a GPU yet; fp16's bounds (TF32 ~ fp16 mantissa)")
# int8 changes logits by design; on real images the ranking must survive on nearly every input. The accuracy
# gate (--eval-data) is the real check; this bound catches broken calibration.
INT8 = Tolerance("int8", max_rel_diff=0.25, min_cosine=0.98, min_top1_agreement=0.9, min_top5_overlap=0.8,
                 measured="trained digits myresnet18, ORT QDQ: max rel 0.037, min cosine 0.9978, top-1 99.4%; "
                          "blank-image calibration: 1.07 / -0.66 / 55%")
TOLERANCES = {t.name: t for t in (FP32, FP16, TRT_FP32, INT8)}


@dataclass(frozen=True)
class ParityCheck:
    """One set of inputs compared between PyTorch (the reference) and an exported runtime."""

    batch_size: int
    max_abs_diff: float
    mean_abs_diff: float
    reference_max_abs: float
    max_rel_diff: float
    min_cosine: float
    top1_agreement: float
    top5_overlap: float
    passed: bool
    inputs: str = "noise"  # 'noise' (normalised-image statistics) or 'images' (real, preprocessed)


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
    def max_rel_diff(self) -> float:
        return max(c.max_rel_diff for c in self.checks)

    @property
    def min_cosine(self) -> float:
        return min(c.min_cosine for c in self.checks)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return tuple(c.batch_size for c in self.checks)

    def describe(self) -> str:
        top1 = min(c.top1_agreement for c in self.checks)
        top5 = min(c.top5_overlap for c in self.checks)
        inputs = "real images" if any(c.inputs == "images" for c in self.checks) else "noise inputs"
        t = self.tolerance
        # A failing figure is printed with the digits it takes to differ from its bound (bounds.against).
        return (f"{self.runtime} vs PyTorch on {inputs} at batch {', '.join(map(str, self.batch_sizes))}: max "
                f"|diff| / logit range "
                f"{against(self.max_rel_diff, t.max_rel_diff, '.2e', at_least=False, bound_fmt='g')}, min cosine "
                f"{against(self.min_cosine, t.min_cosine, '.6f', at_least=True, bound_fmt='g')}, top-1 "
                f"agreement {against(top1, t.min_top1_agreement, '.1%', at_least=True, bound_fmt='.0%')}, top-5 "
                f"overlap {against(top5, t.min_top5_overlap, '.0%', at_least=True)}; "
                f"max |diff| {self.max_abs_diff:.2e}")


def compare_logits(reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance,
                   inputs: str = "noise") -> ParityCheck:
    """Compare two (batch, classes) logit arrays with scale-aware measures."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"output shapes differ: reference {reference.shape}, candidate {candidate.shape}")
    diff = np.abs(reference - candidate)
    spread = np.maximum(reference.max(axis=1) - reference.min(axis=1), 1e-12)
    rel = float((diff.max(axis=1) / spread).max())
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = float(np.min(np.sum(reference * candidate, axis=1) / np.maximum(norms, 1e-30)))
    k = min(5, reference.shape[1])
    ref_top = np.argsort(-reference, axis=1)[:, :k]
    cand_top = np.argsort(-candidate, axis=1)[:, :k]
    top1 = float(np.mean(ref_top[:, 0] == cand_top[:, 0]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ref_top, cand_top)]))
    return ParityCheck(
        batch_size=int(reference.shape[0]),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        reference_max_abs=float(np.abs(reference).max()),
        max_rel_diff=rel,
        min_cosine=cosine,
        top1_agreement=top1,
        top5_overlap=overlap,
        passed=bool(rel <= tolerance.max_rel_diff and cosine >= tolerance.min_cosine
                    and top1 >= tolerance.min_top1_agreement and overlap >= tolerance.min_top5_overlap),
        inputs=inputs,
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
    images: torch.Tensor | None = None,
    max_batch: int | None = None,
) -> VerificationReport:
    """Run ``model`` (fp32 PyTorch on CPU) and ``run`` on the same inputs at each batch size.

    With ``images`` (real, preprocessed), the batch-size checks slice them and one more check covers all of
    them (in chunks of ``max_batch``, for static graphs and engine profiles): parity on the images a model was
    trained for is what matters; noise only exercises the arithmetic (a wrongly calibrated int8 graph can
    agree with PyTorch on noise and not on images).
    """
    checks = []
    was_training = model.training
    model.eval()
    try:
        for index, batch in enumerate(batch_sizes):
            if images is not None and len(images) >= batch:
                offset = (index * batch) % max(len(images) - batch + 1, 1)
                x, kind = images[offset:offset + batch], "images"
            else:
                x, kind = reference_inputs(batch, chw, seed + index), "noise"
            with torch.no_grad():
                reference = model(x).float().numpy()
            checks.append(compare_logits(reference, run(x), tolerance, kind))
        if images is not None and len(images) > max(batch_sizes, default=0):
            chunk = max_batch or len(images)
            starts = range(0, len(images) - (len(images) % chunk if max_batch else 0), chunk)
            with torch.no_grad():
                reference = np.concatenate([model(images[i:i + chunk]).float().numpy() for i in starts])
            candidate = np.concatenate([np.asarray(run(images[i:i + chunk])) for i in starts])
            checks.append(compare_logits(reference, candidate, tolerance, "images"))
    finally:
        model.train(was_training)
    return VerificationReport(artifact=artifact, runtime=runtime, tolerance=tolerance, checks=tuple(checks),
                              checker=checker)


def check_onnx_file(path: str | Path) -> str:
    """``onnx.checker.check_model`` by path (so external data and >2 GB files work), with shape inference."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    return "onnx.checker full_check passed"
