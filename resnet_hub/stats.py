"""Parameter and compute counts, measured on the real modules rather than copied from papers.

Counting runs on the ``meta`` device, so even ResNet-152 costs no memory and well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ModelStats:
    name: str
    params: int
    # Multiply-accumulates per image, the unit timm and torchvision call "GFLOPs" in their tables.
    macs: int
    img_size: int

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def gflops(self) -> float:
        """Floating-point operations per image (2 per multiply-accumulate)."""
        return 2 * self.macs / 1e9


@lru_cache(maxsize=None)
def model_stats(name: str, img_size: int = 224) -> ModelStats:
    """Parameters and MACs of a registered variant for one ``img_size`` x ``img_size`` image."""
    from .registry import build_variant

    with torch.device("meta"):
        model = build_variant(name).eval()
    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, model.in_chans, img_size, img_size, device="meta"))
    return ModelStats(name=name, params=params, macs=counter.get_total_flops() // 2, img_size=img_size)
