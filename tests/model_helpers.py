"""Helpers for tests in every folder (import by module name: conftest modules are ambiguous)."""

from __future__ import annotations

import torch


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial running stats and affine params, so parity tests exercise them.

    Scales stay moderate so logits of deep networks remain O(1) and absolute tolerances mean something.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) * 0.4 + 0.3)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return model
