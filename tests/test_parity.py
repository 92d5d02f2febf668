"""Our implementations against the peers: same keys, same parameter counts, same logits."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

import resnet_hub
from resnet_hub.model.configs import VARIANTS
from resnet_hub.weights.converters.timm_resnetv2 import timm_resnetv2_to_ours

TIMM_PEERS = [v.name for v in VARIANTS.values() if v.timm_name]
TORCHVISION_PEERS = ["myresnet18", "myresnet50", "myresnext50_32x4d", "mywide_resnet50_2"]


def _image(batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def _num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", TIMM_PEERS)
def test_timm_checkpoint_loads_strictly_and_logits_match(name, bn_randomizer):
    variant = VARIANTS[name]
    peer = bn_randomizer(timm.create_model(variant.timm_name)).eval()
    ours = resnet_hub.create_model(name).eval()
    state_dict = peer.state_dict()
    if variant.family == "resnetv2":
        state_dict = timm_resnetv2_to_ours(state_dict)
    ours.load_state_dict(state_dict, strict=True)

    x = _image()
    with torch.no_grad():
        expected, actual = peer(x), ours(x)
    assert expected.abs().max() > 0.05, "logits too small for the comparison to mean anything"
    assert (expected - actual).abs().max().item() <= 1e-5
    assert _num_params(ours) == _num_params(peer)


@pytest.mark.parametrize("name", TORCHVISION_PEERS)
def test_torchvision_checkpoint_loads_strictly_and_logits_match(name, bn_randomizer):
    peer = bn_randomizer(getattr(torchvision.models, VARIANTS[name].torchvision_name)(weights=None)).eval()
    ours = resnet_hub.create_model(name).eval()
    ours.load_state_dict(peer.state_dict(), strict=True)
    x = _image()
    with torch.no_grad():
        assert (peer(x) - ours(x)).abs().max().item() <= 1e-5
    assert _num_params(ours) == _num_params(peer)


def test_resnet50_full_size_parity_and_published_parameter_count(bn_randomizer):
    peer = bn_randomizer(torchvision.models.resnet50(weights=None)).eval()
    ours = resnet_hub.create_model("myresnet50").eval()
    ours.load_state_dict(peer.state_dict(), strict=True)
    x = _image(batch=1, size=224)
    with torch.no_grad():
        assert (peer(x) - ours(x)).abs().max().item() <= 1e-5
    assert _num_params(ours) == 25_557_032


@pytest.mark.parametrize("name", ["myresnet50_v1", "myresnetv2_50_keras"])
def test_keras_layout_parameter_counts_equal_keras_applications(name):
    """Keras counts BatchNorm moving statistics as (non-trainable) weights: add them for the comparison."""
    import keras

    variant = VARIANTS[name]
    peer = getattr(keras.applications, variant.keras_name)(weights=None)
    ours = resnet_hub.create_model(name)
    bn_stats = sum(m.running_mean.numel() * 2 for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert _num_params(ours) + bn_stats == peer.count_params()


def test_every_variant_has_a_peer_or_a_documented_layout():
    for variant in VARIANTS.values():
        assert variant.timm_name or variant.keras_name, variant.name
