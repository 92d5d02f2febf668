"""publish puts measured accuracy of a fine-tuned model into the card's model-index, and its class names in config."""

from __future__ import annotations

import json

import pytest
import timm
import yaml

from resnet_hub.tasks.evaluate import evaluate
from resnet_hub.tasks.publish import build_hub_folder
from resnet_hub.weights.io import read_metadata


def _card_header(folder):
    text = (folder.path / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1]), text


def _metrics(header):
    result = header["model-index"][0]["results"][0]
    return result["dataset"], {m["type"]: m["value"] for m in result["metrics"]}


def test_training_record_becomes_the_model_index(digits_model, tmp_path):
    record = json.loads(read_metadata(digits_model)["training"])
    folder = build_hub_folder("myresnet18", digits_model, tmp_path / "hub", "me/digits", license="apache-2.0")
    header, text = _card_header(folder)
    dataset, metrics = _metrics(header)
    assert metrics["top1"] == pytest.approx(100 * record["val_top1"], abs=0.01)
    assert metrics["top5"] == pytest.approx(100 * record["val_top5"], abs=0.01)
    assert dataset["name"] == "digits" and dataset["split"] == "validation"
    assert "resnet-hub finetune" in text
    config = json.loads((folder.path / "config.json").read_text())
    assert config["label_names"] == [str(i) for i in range(10)] and config["num_classes"] == 10
    model = timm.create_model(f"local-dir:{folder.path}", pretrained=True)
    assert model.num_classes == 10 and config["pretrained_cfg"]["input_size"] == [3, 32, 32]


def test_eval_data_is_measured_for_the_card(digits_model, tmp_path):
    folder = build_hub_folder("myresnet18", digits_model, tmp_path / "hub", "me/digits", eval_data="digits",
                              metrics={"top5": 99.0})
    _, metrics = _metrics(_card_header(folder)[0])
    expected = evaluate(str(digits_model), "digits")
    assert metrics["top1"] == pytest.approx(round(100 * expected.top1, 2))
    assert metrics["top5"] == 99.0  # a metric given by hand wins over the measured one
