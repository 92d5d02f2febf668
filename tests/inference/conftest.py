"""Fixtures for the fast-inference tests: every variant built once, with BatchNorm worth folding."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch

import resnet_hub
from helpers.models import randomize_batchnorm


@lru_cache(maxsize=1)
def _built(name: str) -> torch.nn.Module:
    """One variant at a time (maxsize=1 keeps memory flat across the 22 of them)."""
    torch.manual_seed(0)
    # zero_init_last=False: with it ResNetV2's residual branches would start at exactly zero and hide
    # any folding error; the BN statistics are randomised below for the same reason.
    model = resnet_hub.create_model(name, num_classes=16, zero_init_last=False)
    randomize_batchnorm(model, seed=1)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                module.bias.copy_(torch.randn(module.out_channels, generator=generator) * 0.1)
    return model.eval()


@pytest.fixture
def variant_model():
    """Callable: name -> eval-mode model with randomised BN statistics and conv biases (cached)."""
    return _built
