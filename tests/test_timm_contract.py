"""What timm's own models guarantee, held for ours: device/dtype at creation, cfgs that match the features, FX
tracing (torchvision's feature extractor, timm's ``feature_cls="fx"``) and TorchScript with eager outputs.

timm's full ``tests/test_models.py`` runs on every variant and tag from ``./dev test``
(``tests/timm_suite/run_timm_model_tests.py``); these tests pin the same behaviour with oracles of our own
(eager outputs, timm's cfgs for the same weights) and the bad-input lines, and stay quick.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import timm
import torch
from timm.models import get_pretrained_cfg
from torchvision.models.feature_extraction import create_feature_extractor

import resnet_hub
from resnet_hub.model.configs import VARIANTS, feature_map_size
from resnet_hub.errors import DeviceError, ModelArgumentError

from helpers.models import variants_covering_every_code_path

REPO_ROOT = Path(__file__).resolve().parents[1]
ALL = list(VARIANTS)
# Few variants that together run every code path of the two model classes, derived from the table (today:
# basic / bottleneck blocks, deep stem + avg-pool shortcut, grouped convs + SE, v1, both ResNetV2 layouts).
PATHS = variants_covering_every_code_path()
TAGS = [f"{v.name}.{t.tag}" for v in VARIANTS.values() for t in v.pretrained]


def _eager(name: str, bn_randomizer, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return bn_randomizer(timm.create_model(name, **kwargs)).eval()


# --- device / dtype ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_every_variant_builds_on_the_meta_device_through_timm_and_our_factory(name):
    for model in (timm.create_model(name, device="meta"), resnet_hub.create_model(name, device="meta")):
        tensors = [*model.parameters(), *model.buffers()]
        assert tensors and all(t.device.type == "meta" for t in tensors)


def test_torch_hub_local_source_passes_device_and_dtype():
    model = torch.hub.load(str(REPO_ROOT), "myresnet50d", source="local", device="meta", dtype=torch.bfloat16)
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {("meta", torch.bfloat16)}


@pytest.mark.parametrize("name", ["myresnet18", "myresnetv2_50"])
def test_meta_creation_then_weights_gives_the_real_model(name, bn_randomizer):
    """The large-model recipe: build without memory, materialise, load a state dict."""
    real = _eager(name, bn_randomizer)
    model = timm.create_model(name, device="meta").to_empty(device="cpu")
    model.load_state_dict(real.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), real(x))


@pytest.mark.parametrize("name", ["myresnet18", "myseresnet50", "myresnetv2_50_keras"])
def test_bfloat16_creation_matches_a_converted_float32_model(name, bn_randomizer):
    real = _eager(name, bn_randomizer)
    model = timm.create_model(name, dtype=torch.bfloat16).eval()
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    model.load_state_dict(real.state_dict())
    x = torch.randn(2, 3, 32, 32, dtype=torch.bfloat16)
    with torch.no_grad():
        out = model(x)
        assert out.dtype == torch.bfloat16
        assert torch.equal(out, real.to(torch.bfloat16)(x))
    # reset_classifier builds the new head where the model lives, in its dtype, and keeps the pooling.
    model.reset_classifier(5)
    assert model.fc.weight.dtype == torch.bfloat16 and model.global_pool.pool_type == "avg"


def test_reset_classifier_keeps_the_pooling_unless_told():
    model = timm.create_model("myresnet18", global_pool="catavgmax", device="meta")
    model.reset_classifier(7)
    assert model.global_pool.pool_type == "catavgmax" and model.fc.in_features == 1024
    assert model.head_hidden_size == 1024 and model.fc.weight.device.type == "meta"
    model.reset_classifier(0, "avg")
    assert model.global_pool.pool_type == "avg" and model.head_hidden_size == 512


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and len(text) < 300, text
    return text


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("create", [timm.create_model, resnet_hub.create_model], ids=["timm", "resnet_hub"])
def test_cuda_without_a_gpu_is_one_line(create):
    with pytest.raises(DeviceError) as exc:
        create("myresnet18", device="cuda")
    assert "device='cpu'" in _one_line(exc)


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
def test_unknown_device_is_one_line(device):
    with pytest.raises(DeviceError) as exc:
        resnet_hub.create_model("myresnet18", device=device)
    assert "Unknown device" in _one_line(exc)


@pytest.mark.parametrize("dtype", ["bf17", torch.int8, torch.float8_e4m3fn, 16])
def test_unknown_or_integer_dtype_is_one_line(dtype):
    with pytest.raises(ModelArgumentError) as exc:
        timm.create_model("myresnet18", dtype=dtype)
    assert "torch.bfloat16" in _one_line(exc)


def test_dtype_by_name_is_accepted():
    model = resnet_hub.create_model("myresnet18", dtype="bfloat16", device="meta")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_meta_device_with_weights_is_refused_before_any_download(tmp_path):
    """timm would load pretrained weights into meta tensors as no-ops (one warning per tensor) and return an
    empty model; we refuse before fetching anything."""
    with pytest.raises(DeviceError) as exc:
        timm.create_model("myresnet18.tv_in1k", pretrained=True, device="meta")
    assert "to_empty" in _one_line(exc)
    with pytest.raises(DeviceError):
        with torch.device("meta"):
            resnet_hub.create_model("myresnet18", pretrained=True)
    with pytest.raises(DeviceError):
        resnet_hub.create_model("myresnet18", weights=tmp_path / "any.safetensors", device="meta")


# --- default cfgs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TAGS + [n for n, v in VARIANTS.items() if not v.pretrained])
def test_pool_size_is_the_feature_map_at_each_input_size(name):
    model = timm.create_model(name, device="meta")
    cfg = model.pretrained_cfg
    for size_key, pool_key in (("input_size", "pool_size"), ("test_input_size", "test_pool_size")):
        if cfg.get(size_key) is None:
            assert cfg.get(pool_key) is None
            continue
        features = model.forward_features(torch.empty(1, *cfg[size_key], device="meta"))
        assert tuple(features.shape[-2:]) == tuple(cfg[pool_key]) == feature_map_size(cfg[size_key])


@pytest.mark.parametrize("name", [t for t in TAGS if VARIANTS[t.split(".")[0]].timm_name])
def test_pool_size_agrees_with_timms_cfg_for_the_same_weights(name):
    variant, tag = name.split(".")
    theirs = get_pretrained_cfg(f"{VARIANTS[variant].timm_name}.{tag}").to_dict()
    assert get_pretrained_cfg(name).to_dict()["pool_size"] == theirs["pool_size"]


# --- FX -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PATHS)
def test_fx_symbolic_trace_matches_eager(name, bn_randomizer):
    model = _eager(name, bn_randomizer)
    graph = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        assert torch.allclose(graph(x), model(x), atol=1e-5)
    # The friendly input check still guards the eager model after tracing.
    with pytest.raises(resnet_hub.errors.InputShapeError):
        model(torch.randn(3, 48, 64))


@pytest.mark.parametrize("name", PATHS)
def test_torchvision_feature_extractor_returns_the_eager_stage_outputs(name, bn_randomizer):
    model = _eager(name, bn_randomizer)
    extractor = create_feature_extractor(model, {"layer2": "c3", "layer4": "c5"})
    seen = {}  # hooks added after tracing (they would be traced too); the extractor shares the stage modules
    model.layer2.register_forward_hook(lambda m, i, o: seen.setdefault("c3", o.clone()))
    model.layer4.register_forward_hook(lambda m, i, o: seen.setdefault("c5", o.clone()))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model(x)  # first: the hooks keep the eager outputs
        features = extractor(x)
    assert torch.allclose(features["c3"], seen["c3"], atol=1e-5)
    assert torch.allclose(features["c5"], seen["c5"], atol=1e-5)


@pytest.mark.parametrize("name", PATHS)
def test_timm_fx_feature_backbone_matches_the_hook_backbone(name, bn_randomizer):
    hooks = _eager(name, bn_randomizer, features_only=True)
    fx = timm.create_model(name, features_only=True, feature_cls="fx").eval()
    # Same weights: the FX backbone keeps the traced modules under graph_module (unused buffers dropped).
    wanted = fx.state_dict()
    fx.load_state_dict({f"graph_module.{k}": v for k, v in hooks.state_dict().items() if f"graph_module.{k}" in wanted})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, actual = hooks(x), fx(x)
    assert len(actual) == len(expected) == 5
    for a, e in zip(actual, expected):
        assert torch.allclose(a, e, atol=1e-5)


# --- TorchScript --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PATHS)
def test_torchscript_matches_eager_and_survives_save_and_load(name, bn_randomizer):
    model = _eager(name, bn_randomizer)
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(scripted(x), expected, atol=1e-5)
        assert torch.allclose(loaded(x), expected, atol=1e-5)
        assert torch.allclose(scripted.forward_features(x), model.forward_features(x), atol=1e-5)


def test_torchscript_keeps_training_only_paths(bn_randomizer):
    """Dropout and stochastic depth are scripted too: in eval they are the identity, in training they are not."""
    model = _eager("myresnet18", bn_randomizer, drop_rate=0.3, drop_path_rate=0.3)
    scripted = torch.jit.script(model)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)
        scripted.train()
        torch.manual_seed(0)
        assert not torch.allclose(scripted(x), scripted(x))
