"""`resnet-hub predict` run as the real console script, checked against timm's transforms in-process."""

from __future__ import annotations

import json

import pytest
import torch
from timm.data import ImageNetInfo, create_transform, resolve_data_config

import resnet_hub
from resnet_hub.tasks.predict import load_image
from helpers.cli import run_cli

GOOD = ["a_shapes.png", "b_shapes.jpg", "c_shapes.png"]


def expected_topk(weights, paths, k, data_args=None, num_classes=1000):
    """What timm itself computes: its transform for the recorded preprocessing, our eager model, softmax."""
    model = resnet_hub.create_model("myresnet18", weights=weights, num_classes=num_classes).eval()
    config = resolve_data_config(args=data_args or {}, model=model)
    transform = create_transform(**config)
    batch = torch.stack([transform(load_image(p)) for p in paths])
    with torch.no_grad():
        probs = model(batch).softmax(-1)
    values, indices = probs.topk(k)
    return config, indices.tolist(), values.tolist()


@pytest.fixture(scope="module")
def folder_json(image_dir, predict_weights):
    """One run over a folder with two bad files, batch 2 so the last batch is partial."""
    result = run_cli("predict", "myresnet18", str(image_dir), "--weights", str(predict_weights),
                     "--topk", "3", "--batch-size", "2", "--json")
    return result


def test_predict_json_equals_timm_transforms_in_process(image_dir, predict_weights, folder_json,
                                                        recorded_preprocessing):
    assert folder_json.returncode == 0, folder_json.stderr
    output = json.loads(folder_json.stdout)  # stdout holds only the JSON document
    paths = [image_dir / name for name in GOOD]
    data_args = dict(recorded_preprocessing, input_size=tuple(recorded_preprocessing["input_size"]))
    config, indices, probs = expected_topk(predict_weights, paths, 3, data_args)
    assert output["preprocessing"]["input_size"] == [3, 64, 64]
    assert output["preprocessing"]["crop_pct"] == 0.9 and output["preprocessing"]["mean"] == [0.5, 0.45, 0.4]
    assert [p["path"] for p in output["predictions"]] == [str(p) for p in paths]
    info = ImageNetInfo()
    for prediction, exp_idx, exp_prob in zip(output["predictions"], indices, probs):
        assert [t["index"] for t in prediction["topk"]] == exp_idx
        assert [t["label"] for t in prediction["topk"]] == [info.index_to_description(i) for i in exp_idx]
        assert [t["probability"] for t in prediction["topk"]] == pytest.approx(exp_prob, abs=1e-5)


def test_predict_folder_skips_non_image_and_corrupt_jpeg_with_warnings(image_dir, folder_json):
    assert folder_json.returncode == 0, folder_json.stderr
    output = json.loads(folder_json.stdout)
    skipped = {s["path"]: s["reason"] for s in output["skipped"]}
    assert set(skipped) == {str(image_dir / "notes.txt"), str(image_dir / "d_corrupted.jpg")}
    assert "not an image" in skipped[str(image_dir / "notes.txt")]
    assert "cannot decode" in skipped[str(image_dir / "d_corrupted.jpg")]
    assert "Warning: skipped" in folder_json.stderr
    assert "notes.txt" in folder_json.stderr and "d_corrupted.jpg" in folder_json.stderr
    assert len(output["predictions"]) == 3


def test_predict_table_prints_labels_and_probabilities_per_image(
    image_dir, predict_weights, recorded_preprocessing
):
    paths = [image_dir / "b_shapes.jpg", image_dir / "a_shapes.png"]
    result = run_cli("predict", "myresnet18", *map(str, paths), "--weights", str(predict_weights),
                     "--topk", "2", "--no-optimize")
    assert result.returncode == 0, result.stderr
    data_args = dict(recorded_preprocessing, input_size=tuple(recorded_preprocessing["input_size"]))
    _, indices, probs = expected_topk(predict_weights, paths, 2, data_args)
    info = ImageNetInfo()
    blocks = result.stdout.split(str(paths[1]))  # tables come in input order: block 0 is the first image
    assert str(paths[0]) in blocks[0]
    for block, idx_row, prob_row in zip(blocks, indices, probs):
        for index, prob in zip(idx_row, prob_row):
            assert info.index_to_description(index) in block
            assert f"{prob:.4f}" in block


def test_predict_without_recorded_preprocessing_uses_variant_default_and_class_numbers(
    image_dir, predict_weights_10_classes
):
    path = image_dir / "c_shapes.png"
    result = run_cli("predict", "myresnet18", str(path), "--weights", str(predict_weights_10_classes),
                     "--topk", "4", "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    default = resnet_hub.get_variant("myresnet18").default_preprocessing
    assert output["preprocessing"]["input_size"] == list(default.input_size)
    assert output["preprocessing"]["crop_pct"] == default.crop_pct
    assert output["preprocessing"]["interpolation"] == default.interpolation
    _, indices, probs = expected_topk(predict_weights_10_classes, [path], 4, default.to_timm(), num_classes=10)
    [prediction] = output["predictions"]
    assert [t["label"] for t in prediction["topk"]] == [f"class {i}" for i in indices[0]]
    assert [t["probability"] for t in prediction["topk"]] == pytest.approx(probs[0], abs=1e-5)


def test_predict_exits_non_zero_when_no_file_is_an_image(image_dir, predict_weights):
    result = run_cli("predict", "myresnet18", str(image_dir / "notes.txt"), str(image_dir / "d_corrupted.jpg"),
                     str(image_dir / "missing.png"), "--weights", str(predict_weights))
    assert result.returncode == 1
    assert "no image could be predicted" in result.stderr
    assert "missing.png: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_unknown_model_and_missing_weights_fail_with_clear_messages(image_dir, tmp_path):
    unknown = run_cli("predict", "myresnet5", str(image_dir / "a_shapes.png"))
    assert unknown.returncode == 1
    assert "Unknown model 'myresnet5'" in unknown.stderr and "Traceback" not in unknown.stderr
    missing = run_cli("predict", "myresnet18", str(image_dir / "a_shapes.png"),
                      "--weights", str(tmp_path / "nope.safetensors"))
    assert missing.returncode == 1
    assert "Weights file not found" in missing.stderr and "Traceback" not in missing.stderr
