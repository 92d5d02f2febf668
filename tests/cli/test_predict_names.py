"""`resnet-hub predict NAME` accepts what `evaluate` accepts: a variant with --weights, a weights file, or an
export directory (run in ONNX Runtime); and class names from data never reach the terminal raw."""

from __future__ import annotations

import json

import pytest
import torch

import resnet_hub
from helpers.cli import run_cli

GOOD = ("a_shapes.png", "b_shapes.jpg", "c_shapes.png")


def _topk(result) -> dict[str, list[tuple[int, str, float]]]:
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return {p["path"]: [(t["index"], t["label"], t["probability"]) for t in p["topk"]] for p in data["predictions"]}


@pytest.fixture(scope="module")
def by_variant(image_dir, predict_weights):
    paths = [str(image_dir / name) for name in GOOD]
    result = run_cli("predict", "myresnet18", *paths, "--weights", str(predict_weights), "--topk", "3",
                     "--json")
    return result


def test_a_weights_file_as_name_predicts_like_the_variant_with_weights(image_dir, predict_weights, by_variant):
    paths = [str(image_dir / name) for name in GOOD]
    result = run_cli("predict", str(predict_weights), *paths, "--topk", "3", "--json")
    assert _topk(result) == _topk(by_variant)
    assert json.loads(result.stdout)["preprocessing"] == json.loads(by_variant.stdout)["preprocessing"]
    assert "random weights" not in result.stderr


def test_an_export_directory_as_name_runs_the_export(image_dir, predict_weights, by_variant,
                                                     tmp_path):
    from resnet_hub.export.api import export
    from resnet_hub.export.onnx import OnnxOptions

    exported = export("myresnet18", "onnx", tmp_path / "onnx", weights=predict_weights,
                      onnx=OnnxOptions(exporter="torchscript", batch_size=2))
    paths = [str(image_dir / name) for name in GOOD]
    result = run_cli("predict", str(exported.output), *paths, "--topk", "3", "--json")
    assert "random weights" not in result.stderr and "Unknown model" not in result.stderr
    ours, torch_run = _topk(result), _topk(by_variant)
    assert ours.keys() == torch_run.keys()
    for path, rows in ours.items():  # ONNX Runtime vs PyTorch on the same preprocessed pixels
        assert [(i, label) for i, label, _ in rows] == [(i, label) for i, label, _ in torch_run[path]]
        assert [p for _, _, p in rows] == pytest.approx([p for _, _, p in torch_run[path]], abs=1e-4)
    assert json.loads(result.stdout)["preprocessing"] == json.loads(by_variant.stdout)["preprocessing"]
    refused = run_cli("predict", str(exported.output), paths[0], "--weights", str(predict_weights))
    assert refused.returncode != 0 and "carries its own weights" in refused.stderr


HOSTILE = ["\x1b[2J\x1b[31mred", "line\rover", "bell\x07", "\u202eright-to-left"]


def test_control_characters_in_class_names_are_escaped_in_every_table(image_dir, tmp_path):
    torch.manual_seed(0)
    model = resnet_hub.create_model("myresnet18", num_classes=len(HOSTILE))
    weights = tmp_path / "hostile.safetensors"
    resnet_hub.save_weights(model, weights, architecture="myresnet18",
                            metadata={"label_names": HOSTILE,
                                      "preprocessing": {"input_size": [3, 32, 32], "crop_pct": 1.0,
                                                        "interpolation": "bilinear"}})
    shown = run_cli("predict", str(weights), str(image_dir / "a_shapes.png"), "--topk", str(len(HOSTILE)))
    # evaluate's per-class table: class folders named like the labels (Linux allows any byte but / and NUL)
    data = tmp_path / "data"
    for name in HOSTILE:
        folder = data / name
        folder.mkdir(parents=True)
        (folder / "x.png").write_bytes((image_dir / "a_shapes.png").read_bytes())
    scored = run_cli("evaluate", str(weights), "--data", str(data))
    for result in (shown, scored):
        assert result.returncode == 0, result.stderr
        out = result.stdout + result.stderr
        assert not any(c in out for c in "\x1b\r\x07\u202e"), repr(out)
        assert "\\x1b[2J\\x1b[31mred" in out and "line\\rover" in out and "bell\\x07" in out
        assert "\\u202eright-to-left" in out
