"""The opt-in fast path computes what the original model computes, on every variant."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import resnet_hub
from resnet_hub.model.inference import fold_batchnorm, fold_conv_bn_, prepare_for_inference, remaining_batchnorms

VARIANTS = resnet_hub.variant_names()


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name", VARIANTS)
def test_prepared_model_matches_original_on_every_variant(name, variant_model):
    model = variant_model(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model(x)
    assert expected.abs().max() > 1e-2  # the comparison is not between two near-zero outputs
    for channels_last in (False, True):
        prepared = prepare_for_inference(model, channels_last=channels_last)
        with torch.inference_mode():
            actual = prepared(x)
        assert (actual - expected).abs().max().item() <= 1e-4, f"channels_last={channels_last}"
        assert not prepared.training and not any(p.requires_grad for p in prepared.parameters())
        convs = [m for m in prepared.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
        assert all(c.weight.is_contiguous(memory_format=torch.channels_last) == channels_last for c in convs)
    # What was folded: everything in ResNet; in ResNetV2 norm2/norm3 of each block, while norm1 and the
    # final norm read the residual sum (which the shortcut reads un-normalised) and must stay.
    left = remaining_batchnorms(prepared)
    if resnet_hub.get_variant(name).family == "resnet":
        assert left == []
    else:
        blocks = sum(resnet_hub.get_variant(name).layers)
        assert len(left) == blocks + 1 and all(n.endswith("norm1") or n == "norm" for n in left)
        assert _batchnorms(model) - len(left) == 2 * blocks
    # The original is untouched: same tensors, BatchNorms still in place.
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert _batchnorms(model) > len(left)


def test_fold_conv_bn_handles_bias_and_grouped_convs():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, padding=1, groups=4, bias=True)
    bn = nn.BatchNorm2d(12, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3)
        bn.weight.normal_()  # negative scales too
        bn.bias.normal_()
    reference = nn.Sequential(conv, bn).eval()
    x = torch.randn(3, 8, 9, 9)
    with torch.no_grad():
        expected = reference(x)
        folded = nn.Sequential(conv, bn).eval()
        fold_batchnorm(folded)
        assert isinstance(folded[1], nn.Identity)
        assert (folded(x) - expected).abs().max().item() < 1e-5


def test_folding_refuses_training_mode_and_norms_without_running_stats():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(model)
    with pytest.raises(ValueError, match="running statistics"):
        fold_conv_bn_(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))


def test_prepare_keeps_the_original_in_training_mode_and_options_can_be_turned_off(variant_model):
    model = variant_model("myresnet18").train()
    try:
        plain = prepare_for_inference(model, fold_bn=False, channels_last=False)
        assert model.training and not plain.training
        assert _batchnorms(plain) == _batchnorms(model)
        x = torch.randn(1, 3, 32, 32)
        model.eval()
        with torch.inference_mode():
            assert torch.equal(plain(x), model(x))
    finally:
        model.eval()


def test_compiled_prepared_model_matches_original(variant_model):
    model = variant_model("myresnet18")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    compiled = prepare_for_inference(model, compile=True)
    with torch.inference_mode():
        assert (compiled(x) - model(x)).abs().max().item() <= 1e-4
