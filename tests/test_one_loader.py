"""One loader: a weights file means the same model everywhere, and one rule refuses weights plus --pretrained.

The oracle for "the library reads what a weights file records" is timm itself: the same fine-tuned digits weights,
published as a Hub folder (`publish --dry-run`'s layout) and loaded with ``timm.create_model('local-dir:...')``,
must give the model that ``resnet_hub.create_model(name, weights=FILE)`` gives -- head size, class names and the
data config ``timm.data.resolve_data_config(model=...)`` derives from ``pretrained_cfg``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from timm.data import resolve_data_config

import resnet_hub
from resnet_hub.errors import WeightsChoiceError

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_create_model_with_a_weights_file_is_the_model_timm_loads_from_the_published_folder(digits_model, tmp_path):
    from resnet_hub.zoo.model_loading import load_model
    from resnet_hub.tasks.publish import build_hub_folder

    folder = build_hub_folder("myresnet18", digits_model, tmp_path / "repo", "me/myresnet18-digits").path
    peer = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()

    ours = resnet_hub.create_model("myresnet18", weights=digits_model).eval()  # no num_classes=10 needed

    assert ours.num_classes == peer.num_classes == 10
    as_tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in resolve_data_config(model=peer).items()}
    assert resolve_data_config(model=ours) == as_tuples  # (timm keeps config.json's lists as lists)
    config = resolve_data_config(model=ours)
    assert config["input_size"] == (3, 32, 32) and config["interpolation"] == "bilinear"  # not 224 px bicubic
    assert ours.pretrained_cfg["label_names"] == [str(d) for d in range(10)]
    assert ours.pretrained_cfg["label_names"] == peer.pretrained_cfg["label_names"]
    peer_state = peer.state_dict()
    assert all(torch.equal(v, peer_state[k]) for k, v in ours.state_dict().items())
    # The loader every command uses agrees with the library call.
    loaded = load_model("myresnet18", weights=digits_model)
    assert loaded.data_config() == config
    assert loaded.label_names == ours.pretrained_cfg["label_names"]


def test_a_head_size_the_caller_chooses_wins_over_the_file(digits_model):
    """num_classes given explicitly is the caller's decision: the 10-class file then does not fit, clearly."""
    with pytest.raises(resnet_hub.IncompatibleWeightsError, match="fc.weight"):
        resnet_hub.create_model("myresnet18", weights=digits_model, num_classes=5)


def _one_message(call) -> str:
    with pytest.raises(WeightsChoiceError) as info:
        call()
    return str(info.value)


def test_weights_and_pretrained_together_is_one_error_with_one_message_everywhere(digits_model):
    from resnet_hub.export.source import load_model_source
    from resnet_hub.zoo.model_loading import load_model
    from resnet_hub.tasks.predict import build_predictor

    messages = {
        "create_model": _one_message(lambda: resnet_hub.create_model("myresnet18", pretrained=True,
                                                                     weights=digits_model)),
        "load_model": _one_message(lambda: load_model("myresnet18", pretrained=True, weights=digits_model)),
        "build_predictor": _one_message(lambda: build_predictor("myresnet18", pretrained=True, weights=digits_model)),
        "export": _one_message(lambda: load_model_source("myresnet18", weights=digits_model, pretrained=True)),
    }
    assert set(messages.values()) == {WeightsChoiceError.MESSAGE}, messages
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    for command in (["predict", "myresnet18", str(digits_model), "--weights", str(digits_model), "--pretrained"],
                    ["finetune", "myresnet18", "--data", "digits", "--output", str(digits_model) + ".x",
                     "--weights", str(digits_model), "--pretrained"]):
        proc = subprocess.run([sys.executable, "-m", "resnet_hub", *command], capture_output=True, text=True,
                              env=env, cwd=REPO_ROOT, timeout=300)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == f"Error: {WeightsChoiceError.MESSAGE}", proc.stderr
