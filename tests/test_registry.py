"""timm and torch.hub see the same models, with the preprocessing timm publishes for each weight set."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import timm
import torch
from timm.data import create_transform, resolve_data_config
from timm.models import get_pretrained_cfg

import resnet_hub
from resnet_hub.model.configs import VARIANTS

REPO_ROOT = Path(__file__).resolve().parents[1]
PREPROCESSING_KEYS = ("input_size", "test_input_size", "crop_pct", "test_crop_pct", "crop_mode",
                      "interpolation", "mean", "std", "num_classes", "license")


def test_every_variant_is_registered_with_timm():
    assert set(timm.list_models("my*")) >= set(VARIANTS)
    assert set(timm.list_models("myresnet*")) == {n for n in VARIANTS if n.startswith("myresnet")}
    assert "myresnet50.tv_in1k" in timm.list_pretrained("myresnet50*")


@pytest.mark.parametrize(
    "variant, tag",
    [(v, t) for v in VARIANTS.values() if v.timm_name for t in v.pretrained],
    ids=lambda x: getattr(x, "name", None) or getattr(x, "tag", None),
)
def test_pretrained_cfg_agrees_with_timms_cfg_for_the_same_weights(variant, tag):
    ours = get_pretrained_cfg(f"{variant.name}.{tag.tag}").to_dict()
    theirs = get_pretrained_cfg(f"{variant.timm_name}.{tag.tag}").to_dict()
    assert ours["hf_hub_id"] == theirs["hf_hub_id"]
    for key in PREPROCESSING_KEYS:
        assert ours.get(key) == theirs.get(key), key


def test_resolve_data_config_and_transform_follow_the_chosen_weights():
    model = timm.create_model("myresnet50.tv2_in1k")
    config = resolve_data_config(model=model)
    assert config["input_size"] == (3, 176, 176)
    assert config["interpolation"] == "bilinear"
    eval_config = resolve_data_config(model=model, use_test_size=True)
    assert eval_config["input_size"] == (3, 224, 224)
    transform = create_transform(**eval_config)
    reference = create_transform(**resolve_data_config(model=timm.create_model("resnet50.tv2_in1k"),
                                                       use_test_size=True))
    assert repr(transform) == repr(reference)
    v2 = resolve_data_config(model=timm.create_model("myresnetv2_50"))
    assert v2["mean"] == (0.5, 0.5, 0.5) and v2["interpolation"] == "bicubic"


def test_variants_without_published_weights_still_carry_their_preprocessing():
    config = resolve_data_config(model=timm.create_model("myresnet50_v1"))
    assert config["std"] == pytest.approx((1 / 255,) * 3)
    assert config["mean"] == pytest.approx((123.68 / 255, 116.779 / 255, 103.939 / 255))


def test_hubconf_lists_one_entrypoint_per_variant_with_docs():
    # torch.hub.list/help only take GitHub repos; these are the helpers they use on the downloaded hubconf.
    hubconf = torch.hub._import_module("hubconf", str(REPO_ROOT / "hubconf.py"))
    entrypoints = [f for f in dir(hubconf) if callable(getattr(hubconf, f)) and not f.startswith("_")]
    assert sorted(entrypoints) == sorted(VARIANTS)
    doc = torch.hub._load_entry_from_hubconf(hubconf, "myresnet50").__doc__
    assert "ResNet-50 v1.5" in doc and "tv_in1k" in doc and "torchvision: resnet50" in doc


@pytest.mark.parametrize("name", ["myresnet18", "myresnetv2_50", "myseresnext50_32x4d"])
def test_torch_hub_load_builds_the_same_architecture_as_timm(name):
    from_hub = torch.hub.load(str(REPO_ROOT), name, source="local", num_classes=10)
    from_timm = timm.create_model(name, num_classes=10)
    assert type(from_hub) is type(from_timm)
    assert {k: v.shape for k, v in from_hub.state_dict().items()} == {
        k: v.shape for k, v in from_timm.state_dict().items()
    }
    assert from_hub.pretrained_cfg["architecture"] == name


def test_entrypoints_are_thin_and_read_the_table():
    entrypoint = timm.models.model_entrypoint("myresnet101d")
    assert entrypoint.__module__ == "resnet_hub.zoo.registry"
    assert "ResNet-101-D" in inspect.getdoc(entrypoint)
    model = entrypoint()
    assert len(model.layer3) == VARIANTS["myresnet101d"].layers[2]


def test_list_models_filters_by_pattern():
    assert resnet_hub.list_models("myresnext*") == ["myresnext50_32x4d", "myresnext101_32x8d", "myresnext101_64x4d"]
