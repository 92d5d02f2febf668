"""Helpers shared by the converter tests: randomised peers (real libraries, random weights) and a tiny input."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch

IMG = 64  # small input keeps full-depth peers fast on 2 cores


def image_batch(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(seed))


def normalise(images_01: np.ndarray, mean, std) -> torch.Tensor:
    """timm's standard pipeline after resize/crop: RGB in [0, 1], then (x - mean) / std; NHWC -> NCHW."""
    x = torch.from_numpy(images_01).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
