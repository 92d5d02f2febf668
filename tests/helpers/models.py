"""Models whose every parameter matters: seeded BatchNorm, and one variant per code path of the table."""

from __future__ import annotations

import torch

from resnet_hub.model.configs import VARIANTS, VariantConfig


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial running stats and affine params, so parity tests exercise them (a
    mis-mapped buffer or a skipped norm cannot go unnoticed).

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


def code_features(variant: VariantConfig) -> frozenset[str]:
    """The switches that select code in the two model classes (depth and width only change loop counts and
    tensor sizes): the family and block type, and each option's value within the family (both of Keras' and
    timm's ResNetV2 layouts are paths, a plain stem is as much a path as the deep one)."""
    flags = {"grouped": variant.cardinality > 1, "deep_stem": variant.deep_stem, "avg_down": variant.avg_down,
             "stride_in_1x1": variant.stride_in_1x1, "conv_bias": variant.conv_bias, "se": variant.se,
             "keras_v2_layout": variant.keras_v2_layout}
    return frozenset({f"family={variant.family}", f"block={variant.block}"}
                     | {f"{variant.family}:{flag}={on}" for flag, on in flags.items()})


def variants_covering_every_code_path() -> list[str]:
    """Few, cheap variants that together switch on every code feature of the table, in table order.

    Derived from the table as timm's ``test_models.py`` is from its registry: a variant that brings a new switch
    is added to the tests that use this list without editing them. Greedy cover: the variant with the most
    features not yet covered wins, the cheapest (fewest blocks, then narrowest) on a tie.
    """
    uncovered = set().union(*(code_features(v) for v in VARIANTS.values()))
    chosen: list[str] = []
    while uncovered:
        best = min(VARIANTS.values(), key=lambda v: (-len(code_features(v) & uncovered), sum(v.layers),
                                                      v.base_width * v.cardinality))
        chosen.append(best.name)
        uncovered -= code_features(best)
    return [name for name in VARIANTS if name in chosen]
