"""Helpers shared by the converter tests: randomised peers (real libraries, random weights) and a tiny input."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch

IMG = 64  # small input keeps full-depth peers fast on 2 cores


def randomize_batchnorm(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine params so a mis-mapped buffer cannot go unnoticed."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


def image_batch(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(seed))


def normalise(images_01: np.ndarray, mean, std) -> torch.Tensor:
    """timm's standard pipeline after resize/crop: RGB in [0, 1], then (x - mean) / std; NHWC -> NCHW."""
    x = torch.from_numpy(images_01).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
