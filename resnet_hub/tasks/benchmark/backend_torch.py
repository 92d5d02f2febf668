"""PyTorch backends: timm's eager peer (the baseline), our eager model, and the optimised inference path."""

from __future__ import annotations

import torch
from torch import nn

from ...weights.lookup import get_variant
from .common import Runner, torch_call, torch_logits

BASELINE_TIMM = "timm"


def timm_peer(name: str, ours: nn.Module, device: torch.device) -> tuple[nn.Module, bool]:
    """timm's eager model of the same architecture, with our weights when the layouts agree."""
    import timm

    variant = get_variant(name)
    assert variant.timm_name is not None, f"{name} has no timm peer"  # callers check variant.timm_name first
    peer = timm.create_model(variant.timm_name, pretrained=False, num_classes=ours.num_classes).eval()
    try:
        peer.load_state_dict(ours.state_dict())
        same = True
    except RuntimeError:  # e.g. ResNetV2, whose keys differ: speed does not depend on the values
        same = False
    return peer.to(device), same


def timm_runner(name: str, ours: nn.Module, x: torch.Tensor, device: torch.device) -> Runner:
    peer, same = timm_peer(name, ours, device)
    return Runner(BASELINE_TIMM, f"timm {get_variant(name).timm_name}, eager (the baseline)", torch_call(peer, x),
                  is_baseline=True, weights_match=same, logits=torch_logits(peer, device) if same else None)


def eager_runner(name: str, ours: nn.Module, x: torch.Tensor, device: torch.device) -> Runner:
    baseline = not get_variant(name).timm_name
    runner = Runner("torch", f"resnet-hub {name}, eager", torch_call(ours, x), is_baseline=baseline,
                    logits=torch_logits(ours, device))
    if baseline:
        runner.description += " (the baseline: timm has no peer of this variant)"
    return runner


def optimized_runner(ours: nn.Module, x: torch.Tensor, device: torch.device, compile: bool) -> Runner:
    from ...model.inference import prepare_for_inference

    fast = prepare_for_inference(ours, compile=compile)
    return Runner("torch-optimized",
                  "resnet-hub, BatchNorm folded + channels_last" + (" + torch.compile" if compile else ""),
                  torch_call(fast, x), logits=torch_logits(fast, device))
