"""Names every benchmark module stands on: the error, a runner (one backend ready to be timed), progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ...errors import ResNetHubError

ProgressFn = Callable[[str], None]
# Images the int8 backends calibrate on by default (speed does not depend on the count; accuracy is the export's
# accuracy gate's business, on labelled images).
DEFAULT_CALIB_DATA = "digits"
DEFAULT_BENCH_CALIB_LIMIT = 32


class BenchmarkError(ResNetHubError):
    """The benchmark cannot run as asked (bad backend name, no CUDA for --device cuda, ...)."""


class Unavailable(Exception):
    """A backend cannot run here; the message says why and how to fix it."""


@dataclass
class Runner:
    """One backend, set up: ``call`` runs the benchmark batch; ``logits`` runs any normalised float batch (for the
    accuracy gate), None where the artifact only takes the benchmark's batch size."""

    name: str
    description: str
    call: Callable[[], torch.Tensor]
    is_baseline: bool = False
    weights_match: bool = True  # False: outputs are not comparable with ours (different weights)
    cleanup: Callable[[], None] | None = None
    arithmetic: str = "fp32"  # the ceiling it is compared with: 'fp32', 'int8' or 'gpu'
    precision: str = "fp32"  # the export precision whose gate applies: 'fp32', 'fp16', 'int8'
    logits: Callable[[torch.Tensor], np.ndarray] | None = None


@dataclass(frozen=True)
class Calibration:
    """Where the int8 backends take their calibration images from."""

    source: str | None
    limit: int
    data_config: dict[str, Any]


def torch_call(model: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def call() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return call


def torch_logits(model: nn.Module, device: torch.device) -> Callable[[torch.Tensor], np.ndarray]:
    def run(batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return model(batch.to(device)).float().cpu().numpy()

    return run


def calibration_images(calibration: Calibration | None, backend: str) -> tuple[np.ndarray, int]:
    """The int8 backends' calibration array (float32 N, C, H, W) and its image count, or why there is none."""
    from resnet_hub.export.calibration import load_calibration

    if calibration is None or calibration.source is None:
        raise Unavailable(f"{backend} needs calibration images and scikit-learn (for the built-in 'digits') is not "
                          "installed: pass --calib-data DIR (a folder of images)")
    try:
        images, count, _ = load_calibration(calibration.source, calibration.data_config, limit=calibration.limit)
    except ResNetHubError as exc:
        raise Unavailable(f"calibration data: {exc}") from exc
    return images, count
