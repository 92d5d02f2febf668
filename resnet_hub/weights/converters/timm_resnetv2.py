"""timm's ResNetV2 keys -> ours.

timm nests blocks as ``stages.i.blocks.j`` with a ``stem`` and a conv-based ``head``; our ResNetV2 uses
the same flat ``layerN.j`` naming as our ResNet so tooling (feature extraction, group matchers, the
optimiser's parameter groups) treats every family alike.
"""

from __future__ import annotations

import re

import torch

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^stem\.conv\."), "conv1."),
    (re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.downsample\.conv\."), "layer{s}.{b}.downsample."),
    (re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\."), "layer{s}.{b}."),
    (re.compile(r"^head\.fc\."), "fc."),
]


def is_timm_resnetv2_state_dict(state_dict: dict[str, torch.Tensor]) -> bool:
    return "stem.conv.weight" in state_dict or any(k.startswith("stages.0.blocks.") for k in state_dict)


def _rename(key: str) -> str:
    for pattern, template in _RULES:
        match = pattern.match(key)
        if match:
            groups = match.groups()
            replacement = (
                template.format(s=int(groups[0]) + 1, b=groups[1]) if groups else template
            )
            return replacement + key[match.end():]
    return key


def timm_resnetv2_to_ours(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename keys; timm's 1x1-conv classifier becomes our Linear by dropping its spatial dims."""
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new_key = _rename(key)
        if new_key == "fc.weight" and value.ndim == 4:
            value = value.flatten(1)
        converted[new_key] = value
    return converted


def pretrained_filter(state_dict: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """timm ``pretrained_filter_fn``: converts timm-layout checkpoints, passes ours through."""
    if is_timm_resnetv2_state_dict(state_dict):
        return timm_resnetv2_to_ours(state_dict)
    return state_dict
