"""A Hub repo's config.json (and a weights file's metadata) is untrusted input: each hostile record from issue 22 /
issue 17 item 11 is refused with one line, on our routes and on timm's (``local-dir:`` / ``hf-hub:``), before
anything is built. The folders are real ``publish --dry-run`` output, edited the way a hostile publisher would."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import timm
import torch

import resnet_hub
from resnet_hub.errors import MetadataError
from resnet_hub.weights.metadata_checks import MAX_NUM_CLASSES, check_hub_config, check_preprocessing
from resnet_hub.zoo.model_loading import load_model
from resnet_hub.tasks.publish import build_hub_folder
from resnet_hub.weights.io import save_weights

DIGITS = [str(i) for i in range(10)]


@pytest.fixture
def folder(tmp_path) -> Path:
    """myresnet18 with a 10-class head, published with its class names (what a fine-tune + publish gives)."""
    torch.manual_seed(0)
    model = resnet_hub.create_model("myresnet18", num_classes=10)
    weights = tmp_path / "w.safetensors"
    save_weights(model, weights, "myresnet18", metadata={"label_names": DIGITS})
    return build_hub_folder("myresnet18", weights, tmp_path / "repo", "me/digits", label_names=DIGITS).path


def edit_config(folder: Path, edit) -> Path:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))  # json.dumps writes NaN as the bare token NaN, as a hostile file can
    return folder


def huge_head(config: dict) -> None:
    config["num_classes"] = config["pretrained_cfg"]["num_classes"] = 50_000_000


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_the_untouched_folder_loads_on_both_routes(folder):
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert model.fc.out_features == 10
    assert resnet_hub.create_model(f"local-dir:{folder}", pretrained=True).fc.out_features == 10


def test_fifty_million_classes_are_refused_before_anything_is_allocated(folder):
    edit_config(folder, huge_head)
    for create in (timm.create_model, resnet_hub.create_model):
        with pytest.raises(MetadataError) as exc:
            create(f"local-dir:{folder}", pretrained=True)
        assert "50,000,000" in one_line(exc) and f"{MAX_NUM_CLASSES:,}" in str(exc.value)
    # transformers builds with timm.create_model(architecture, num_classes=N) before loading weights
    with pytest.raises(MetadataError):
        timm.create_model("myresnet18", num_classes=50_000_000)


def test_the_refusal_of_a_huge_head_costs_no_memory(folder):
    """In a fresh process: the refusal comes before the 100 GB head would be allocated (peak RSS of the process
    stays that of torch + timm; a 50,000,000 x 512 float32 head alone is 95 GiB)."""
    edit_config(folder, huge_head)
    code = textwrap.dedent(f"""
        import timm
        try:
            timm.create_model("local-dir:{folder}", pretrained=True)
        except Exception as exc:
            print(type(exc).__name__)
        # VmHWM: this process's own peak (ru_maxrss keeps the forking pytest process's peak across exec)
        print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, peak_kib = proc.stdout.split()
    assert name == "MetadataError"
    assert int(peak_kib) < 2 * 1024 * 1024, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"


def test_a_nan_mean_is_refused_on_every_route(folder, hub_cache):
    edit_config(folder, lambda c: c["pretrained_cfg"].update(mean=[math.nan, 0.456, 0.406]))
    with pytest.raises(MetadataError) as exc:
        timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert "not finite" in one_line(exc)
    with pytest.raises(MetadataError):
        load_model(f"local-dir:{folder}", pretrained=True)
    # the same repo on the Hub (an offline cache laid by hand): timm's hf-hub: route and ours
    hub_cache.add("me/nan-mean", {p.name: p.read_bytes() for p in folder.iterdir()})
    for create in (timm.create_model, resnet_hub.create_model):
        with pytest.raises(MetadataError) as exc:
            create("hf-hub:me/nan-mean", pretrained=True)
        assert "not finite" in one_line(exc)


def test_an_architecture_that_contradicts_the_weights_is_one_line(folder, hub_cache):
    edit_config(folder, lambda c: c.update(architecture="resnet50"))
    with pytest.raises(MetadataError) as exc:
        timm.create_model(f"local-dir:{folder}", pretrained=True)  # timm's own resnet50 would be built
    message = one_line(exc)
    assert "'resnet50'" in message and "'myresnet18'" in message
    hub_cache.add("me/wrong-arch", {p.name: p.read_bytes() for p in folder.iterdir()})
    with pytest.raises(MetadataError):
        timm.create_model("hf-hub:me/wrong-arch", pretrained=True)


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.update(label_names=DIGITS[:9]), "9 label names for a head of 10"),
    (lambda c: (c.update(num_classes=7), c["pretrained_cfg"].update(num_classes=7)), "has 10 outputs"),
], ids=["label-count", "num-classes-vs-head"])
def test_a_label_count_or_head_size_that_contradicts_the_weights_is_refused(folder, edit, words):
    edit_config(folder, edit)
    for create in (timm.create_model, resnet_hub.create_model):
        with pytest.raises(MetadataError) as exc:
            create(f"local-dir:{folder}", pretrained=True)
        assert words in one_line(exc)


@pytest.mark.parametrize("values, words", [
    ({"mean": [0.5, float("inf"), 0.5]}, "not finite"),
    ({"std": [0.2, 0.0, 0.2]}, "must be > 0"),
    ({"std": [0.2, 0.2]}, "one per input channel"),
    ({"interpolation": "sinc"}, "unknown interpolation"),
    ({"crop_mode": "zoom"}, "unknown crop_mode"),
    ({"crop_pct": 1.5}, "(0, 1]"),
    ({"crop_pct": 0}, "(0, 1]"),
    ({"input_size": [3, 100000, 224]}, "sides of 1..8192"),
    ({"input_size": [3, 224]}, "[channels, height, width]"),
    ({"test_input_size": [3, 0, 0]}, "test_input_size"),
])
def test_invalid_preprocessing_values_are_named(values, words):
    with pytest.raises(MetadataError) as exc:
        check_preprocessing({"input_size": [3, 224, 224], **values}, "config.json")
    assert words in str(exc.value) and str(exc.value).startswith("config.json")


def test_every_variant_s_own_preprocessing_passes():
    """The checks must not refuse the table's own records (timm's pretrained_cfgs)."""
    from resnet_hub.model.configs import VARIANTS, pretrained_cfg_for

    for variant in VARIANTS.values():
        for tag in (None, *variant.pretrained):
            check_preprocessing(pretrained_cfg_for(variant, tag), variant.name)


def test_check_hub_config_needs_an_architecture():
    with pytest.raises(MetadataError, match="names no architecture"):
        check_hub_config({"pretrained_cfg": {}}, "config.json")


def test_a_weights_file_with_invalid_recorded_preprocessing_is_an_error_not_a_default(tmp_path):
    """Issue 17 item 11: unparseable or invalid metadata is refused, never replaced by the 224 px default."""
    model = resnet_hub.create_model("myresnet18", num_classes=3)
    nan = tmp_path / "nan.safetensors"
    record = json.dumps({"input_size": [3, 32, 32], "mean": [math.nan, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})
    save_weights(model, nan, "myresnet18", metadata={"preprocessing": record})
    with pytest.raises(MetadataError) as exc:
        load_model(None, weights=nan)
    assert str(nan) in one_line(exc) and "not finite" in str(exc.value)
    garbled = tmp_path / "garbled.safetensors"
    save_weights(model, garbled, "myresnet18", metadata={"preprocessing": "{input_size: 32"})
    with pytest.raises(MetadataError, match="not valid JSON"):
        load_model(None, weights=garbled)
