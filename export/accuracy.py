"""The accuracy gate: an export is kept only if it is (nearly) as accurate as the PyTorch model it came from.

Logit parity says whether two graphs compute the same numbers; users care whether the deployed model still
classifies their images. So with labelled images (``--eval-data``), the reference model and the artifact are
scored on the same images after the same preprocessing, and the export fails — leaving nothing in place — when
the artifact's top-1 drops by more than the precision's allowance. Calibration gone wrong (blank images, other
preprocessing than training; timm #1412, TensorRT #2255) shows up here as a collapse, not as a quiet regression.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from .bounds import figure
from .errors import AccuracyGateError

# Allowed top-1 drop in percentage points: fp32 differs from PyTorch only by summation order, fp16 by rounding,
# int8 by quantization. Measured on the fine-tuned digits model (359 val images): fp32 0.0, fp16 0.0, int8
# 0.0-0.6 points; blank-image int8 calibration lost ~60 points.
DEFAULT_MAX_ACCURACY_DROP = {"fp32": 0.1, "fp16": 0.5, "int8": 1.0}


@dataclass(frozen=True)
class AccuracyReport:
    """Reference vs artifact on the same labelled images (top-1/top-5 as fractions, delta in points)."""

    reference_top1: float
    artifact_top1: float
    delta_top1: float  # artifact - reference, percentage points
    reference_top5: float
    artifact_top5: float
    top1_agreement: float
    n: int
    max_accuracy_drop: float  # points
    passed: bool
    data: dict[str, Any]
    runtime: str
    skipped_files: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"top-1 {self.reference_top1:.2%} (PyTorch) -> {self.artifact_top1:.2%} ({self.runtime}), "
                f"{self.delta_top1:+.2f} points on {self.n} images of {self.data.get('source')} "
                f"(allowed drop {self.max_accuracy_drop:g} points), top-1 agreement {self.top1_agreement:.1%}")


def max_drop_for(precision: str, override: float | None = None) -> float:
    if override is not None:
        if override < 0:
            raise AccuracyGateError(f"--max-accuracy-drop must be >= 0 points, got {override}")
        return float(override)
    return DEFAULT_MAX_ACCURACY_DROP[precision]


def accuracy_gate(
    reference: Callable[[Any], Any],
    artifact: Callable[[Any], Any],
    prepared: Any,  # resnet_hub.tasks.evaluate.PreparedData
    *,
    precision: str,
    runtime: str,
    max_accuracy_drop: float | None = None,
    batch_size: int = 32,
) -> AccuracyReport:
    """Score both logits functions on ``prepared`` and apply the allowance; raises AccuracyGateError on a drop.

    One streamed pass through the input pipeline: each batch is decoded once and fed to PyTorch and to the
    runtime as the same tensor, and only counts are kept, so the gate's memory does not grow with the images."""
    from resnet_hub.tasks.evaluate import score_many

    allowed = max_drop_for(precision, max_accuracy_drop)
    ref, art = score_many([reference, artifact], prepared, targets=["reference", "artifact"],
                          runtimes=["PyTorch", runtime], batch_size=batch_size)
    delta = 100.0 * (art.top1 - ref.top1)
    agreement = float((ref.predictions == art.predictions).float().mean())
    report = AccuracyReport(
        reference_top1=ref.top1, artifact_top1=art.top1, delta_top1=delta, reference_top5=ref.top5,
        artifact_top5=art.top5, top1_agreement=agreement, n=ref.n, max_accuracy_drop=allowed,
        passed=-delta <= allowed + 1e-9, data=ref.data, runtime=runtime, skipped_files=len(ref.skipped),
    )
    if not report.passed:
        raise AccuracyGateError(
            f"The {precision} export loses {figure(-delta, allowed, '.2f', at_least=False)} top-1 points, more "
            f"than the {allowed:g} allowed: "
            f"{report.describe()}. Nothing was written. For int8, calibrate on representative images with the "
            "model's own preprocessing (--calib-data, a few hundred images of the deployment domain); or raise "
            "--max-accuracy-drop if this loss is acceptable.", report)
    return report
