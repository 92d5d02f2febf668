"""The options timm users expect, exercised on small inputs."""

from __future__ import annotations

import pytest
import timm
import torch

import resnet_hub
from resnet_hub.model.configs import VARIANTS

from helpers.models import variants_covering_every_code_path

# Derived from the table (as timm's test_models.py is from its registry): a variant that brings a new code path
# is covered here without editing this file; tests/test_timm_contract.py builds every variant.
PATHS = variants_covering_every_code_path()


@pytest.mark.parametrize("name", PATHS)
def test_features_only_returns_five_strides_and_channels(name):
    model = timm.create_model(name, features_only=True).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        features = model(x)
    assert len(features) == 5
    # Keras' ResNetV2 strides in the last block of a stage: its stages end one reduction later.
    expected = [2, 8, 16, 32, 32] if VARIANTS[name].keras_v2_layout else [2, 4, 8, 16, 32]
    assert model.feature_info.reduction() == expected
    for feature, channels, reduction in zip(features, model.feature_info.channels(), model.feature_info.reduction()):
        assert feature.shape == (1, channels, 64 // reduction, 96 // reduction)
    expansion = 1 if VARIANTS[name].block == "basic" else 4
    assert model.feature_info.channels()[1:] == [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]


def test_features_only_out_indices_selects_stages():
    model = timm.create_model("myresnet18", features_only=True, out_indices=(2, 4)).eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == [128, 512]
    assert [f.shape[-1] for f in features] == [8, 2]


@pytest.mark.parametrize("name", PATHS)
def test_in_chans_and_num_classes(name):
    model = resnet_hub.create_model(name, in_chans=1, num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)


@pytest.mark.parametrize("name", PATHS)
def test_odd_input_sizes_and_batch_one(name):
    model = resnet_hub.create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 97, 131)).shape == (1, 7)


def test_num_classes_zero_gives_pooled_features_and_forward_head_splits_the_forward():
    model = resnet_hub.create_model("myresnet50").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 2048, 2, 2)
        assert torch.equal(model.forward_head(features), model(x))
        pre_logits = model.forward_head(features, pre_logits=True)
        assert pre_logits.shape == (2, 2048)
        headless = resnet_hub.create_model("myresnet50", num_classes=0).eval()
        headless.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")})
        assert torch.allclose(headless(x), pre_logits)


@pytest.mark.parametrize("pool, width", [("avg", 512), ("max", 512), ("avgmax", 512), ("catavgmax", 1024)])
def test_global_pool_options(pool, width):
    model = resnet_hub.create_model("myresnet18", global_pool=pool, num_classes=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, width)
    features = model.forward_features(torch.ones(1, 3, 64, 64))
    if pool == "max":
        assert torch.allclose(model(torch.ones(1, 3, 64, 64)), features.amax((2, 3)))


def test_unpooled_features_require_no_classifier():
    model = resnet_hub.create_model("myresnet18", global_pool="", num_classes=0).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    with pytest.raises(ValueError, match="only works with num_classes=0"):
        resnet_hub.create_model("myresnet18", global_pool="", num_classes=10)


def test_reset_classifier_and_get_classifier():
    model = resnet_hub.create_model("myresnext50_32x4d")
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    model.reset_classifier(0)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 2048)


def test_zero_init_last_zeroes_the_last_norm_of_every_block():
    model = resnet_hub.create_model("myresnet50")
    assert all(block.bn3.weight.abs().sum() == 0 for stage in model.stages() for block in stage)
    model = resnet_hub.create_model("myresnet50", zero_init_last=False)
    assert all(block.bn3.weight.abs().sum() > 0 for stage in model.stages() for block in stage)


def test_drop_rate_and_drop_path_are_active_only_in_training():
    model = resnet_hub.create_model("myresnet18", drop_rate=0.5, drop_path_rate=0.5, zero_init_last=False)
    x = torch.randn(4, 3, 64, 64)
    model.train()
    torch.manual_seed(0)
    first = model(x)
    second = model(x)
    assert not torch.allclose(first, second)
    model.eval()
    assert torch.equal(model(x), model(x))
    assert model.layer4[-1].drop_path.drop_prob == pytest.approx(0.5)
    assert model.layer1[0].drop_path.__class__.__name__ == "Identity"


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = resnet_hub.create_model("myresnet18", zero_init_last=False).eval()
    x = torch.randn(2, 3, 64, 64)
    model(x).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for grad, reference in zip((p.grad for p in model.parameters()), expected):
        assert torch.allclose(grad, reference, atol=1e-6)


def test_channels_last_gives_the_same_logits(bn_randomizer):
    model = bn_randomizer(resnet_hub.create_model("myresnet50d")).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        actual = model(x.to(memory_format=torch.channels_last))
    assert (expected - actual).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["myseresnet50", "myresnetv2_50_keras"])
def test_torch_export_traces_without_graph_breaks(name, bn_randomizer):
    """torch.export (the dynamo ONNX exporter's front end) needs a graph with no Python-side surprises."""
    model = bn_randomizer(resnet_hub.create_model(name)).eval()
    x = torch.randn(2, 3, 64, 64)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    y = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(program.module()(y), model(y), atol=1e-5)


def test_torch_compile_matches_eager(bn_randomizer):
    model = bn_randomizer(resnet_hub.create_model("myresnet18")).eval()
    compiled = torch.compile(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (compiled(x) - model(x)).abs().max() <= 1e-4
