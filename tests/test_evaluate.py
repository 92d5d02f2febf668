"""evaluate: its numbers equal an independent computation, for weights files and exported artifacts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import load_file

import resnet_hub  # noqa: F401  (registers myresnet18 with timm)
from resnet_hub.errors import EvaluationError
from resnet_hub.tasks.evaluate import evaluate
from resnet_hub.weights.io import read_metadata
from helpers.cli import run_cli


def _digits_png_folder(root, per_class=8):
    """Real handwritten digits written as PNG files, one folder per class (names '0'..'9')."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(10):
        (root / str(label)).mkdir(parents=True)
        for i in np.flatnonzero(digits.target == label)[-per_class:]:  # the end of each class, not the start
            Image.fromarray(np.uint8(np.rint(digits.images[i] * 255 / 16))).save(root / str(label) / f"{i}.png")
    return root


def _independent_scores(weights, folder):
    """PIL + timm's transform + the plain timm model: nothing from resnet_hub's data or evaluate modules."""
    pre = json.loads(read_metadata(weights)["preprocessing"])
    transform = timm.data.create_transform(input_size=tuple(pre["input_size"]), interpolation=pre["interpolation"],
                                           mean=tuple(pre["mean"]), std=tuple(pre["std"]), crop_pct=pre["crop_pct"],
                                           crop_mode=pre["crop_mode"], is_training=False)
    model = timm.create_model("myresnet18", num_classes=10)
    model.load_state_dict(load_file(str(weights)))
    model.eval()
    hits1, hits5, per_class = [], [], {}
    for label in sorted(os.listdir(folder)):
        for name in sorted(os.listdir(folder / label)):
            x = transform(Image.open(folder / label / name).convert("RGB")).unsqueeze(0)
            with torch.no_grad():
                top = model(x)[0].topk(5).indices.tolist()
            hits1.append(top[0] == int(label))
            hits5.append(int(label) in top)
            per_class.setdefault(label, []).append(top[0] == int(label))
    per_class_top1 = {k: float(np.mean(v)) for k, v in per_class.items()}
    return float(np.mean(hits1)), float(np.mean(hits5)), len(hits1), per_class_top1


def test_evaluate_cli_equals_an_independent_computation(digits_model, tmp_path):
    folder = _digits_png_folder(tmp_path / "digits-png")
    top1, top5, n, per_class = _independent_scores(digits_model, folder)
    assert top1 > 0.5  # a model that has learned (chance is 10 %)
    proc = run_cli("evaluate", str(digits_model), "--data", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "evaluated 80/80 images" in proc.stderr  # piped: plain progress lines (done/total, img/s, ETA)
    result = json.loads(proc.stdout)
    assert result["n"] == n == 80
    assert result["top1"] == pytest.approx(top1, abs=1e-9) and result["top5"] == pytest.approx(top5, abs=1e-9)
    assert {c["name"]: c["top1"] for c in result["per_class"]} == pytest.approx(per_class)
    # NAME --weights is the same evaluation
    named = json.loads(run_cli("evaluate", "myresnet18", "--weights", str(digits_model), "--data", str(folder),
                            "--json").stdout)
    assert named["top1"] == result["top1"]


def test_evaluate_an_onnx_export_directory(digits_model, tmp_path):
    from resnet_hub.export.directory import export_target
    from resnet_hub.export.onnx import OnnxOptions, export_onnx

    export_onnx("myresnet18", tmp_path / "onnx", OnnxOptions(), weights=digits_model)
    reference = evaluate(str(digits_model), "digits")
    artifact = evaluate(export_target(tmp_path / "onnx"), "digits")
    assert artifact.n == reference.n == 359
    assert artifact.top1 == pytest.approx(reference.top1, abs=1 / 359)  # fp32: at most one near-tie may flip
    assert artifact.runtime == "ONNX Runtime (CPU)"
    proc = run_cli("evaluate", str(tmp_path / "onnx"), "--data", "digits", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["top1"] == pytest.approx(artifact.top1)


def test_classes_are_matched_by_name_and_unknown_classes_are_refused(digits_model, tmp_path):
    folder = _digits_png_folder(tmp_path / "d", per_class=3)
    for label in ("2", "3", "4", "5", "6", "7", "8", "9"):  # a subset of the model's classes still scores right
        for image in (folder / label).iterdir():
            image.unlink()
        (folder / label).rmdir()
    subset = evaluate(str(digits_model), folder)
    assert [c.name for c in subset.per_class] == ["0", "1"] and subset.n == 6
    (folder / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(folder / "cat" / "x.png")
    with pytest.raises(EvaluationError, match=r"does not predict: \['cat'\]"):
        evaluate(str(digits_model), folder)


def test_a_model_without_class_names_needs_as_many_classes_as_its_head(tmp_path):
    proc = run_cli("evaluate", "myresnet18", "--data", "digits")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "10 classes but the model predicts 1000" in proc.stderr


def test_limit_scores_the_first_n_images(digits_model, tmp_path):
    """#17 item 13: --limit crashed (IndexError)."""
    folder = _digits_png_folder(tmp_path / "all")
    first = _digits_png_folder(tmp_path / "first")
    for label in range(10):  # keep what --limit 11 reads: class 0's 8 images and class 1's first 3
        for i, image in enumerate(sorted((first / str(label)).iterdir())):
            if label > 1 or (label == 1 and i >= 3):
                image.unlink()
        if not any((first / str(label)).iterdir()):
            (first / str(label)).rmdir()
    expected = evaluate(str(digits_model), first)
    limited = evaluate(str(digits_model), folder, limit=11)
    assert limited.n == expected.n == 11 and limited.top1 == expected.top1 and limited.top5 == expected.top5
    proc = run_cli("evaluate", str(digits_model), "--data", str(folder), "--limit", "11", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n"] == 11


def test_an_unknown_or_missing_device_is_one_line():
    """#17 item 14: --device was passed to torch unchecked (a raw RuntimeError)."""
    proc = run_cli("evaluate", "myresnet18", "--data", "digits", "--device", "tpu")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Unknown device 'tpu': use cpu, or cuda" in proc.stderr


def test_a_folder_holding_only_val_is_read_as_the_val_split(digits_model, tmp_path):
    """#23 item 4: ImageNet's validation set unpacked as SRC/val/<class>/ was 'a single class (val)'."""
    _digits_png_folder(tmp_path / "imagenet-like" / "val", per_class=3)
    direct = evaluate(str(digits_model), tmp_path / "imagenet-like" / "val")
    through_root = evaluate(str(digits_model), tmp_path / "imagenet-like")
    assert through_root.n == direct.n == 30 and through_root.top1 == direct.top1
    assert through_root.data["split"] == "val"


def _with_training_record(weights, path, record):
    from safetensors.torch import save_file

    metadata = dict(read_metadata(weights))
    metadata["training"] = json.dumps(record)
    save_file(load_file(str(weights)), str(path), metadata=metadata)
    return path


def test_a_training_folder_without_val_is_scored_on_finetunes_hold_out(digits_model, tmp_path):
    """#17 item 9: evaluating the folder finetune trained on scored its training images too."""
    from resnet_hub.tasks.data import open_labelled

    folder = _digits_png_folder(tmp_path / "mydata")
    split = dict(source=str(folder), split="...", n=64)
    record = dict(data=dict(train=split, val=dict(split, n=16)), options=dict(val_split=0.25, seed=7))
    weights = _with_training_record(digits_model, tmp_path / "trained.safetensors", record)
    held_out = open_labelled(folder, "val", val_split=0.25, seed=7)
    result = evaluate(str(weights), folder)
    assert result.n == len(held_out) == 20 and "hold-out (0.25, seed 7)" in result.data["split"]
    # Another folder (a real test set) is scored whole.
    _digits_png_folder(tmp_path / "test-set", per_class=2)
    assert evaluate(str(weights), tmp_path / "test-set").n == 20
    # Weights that do not record how the hold-out was drawn are refused, with the fix.
    del record["options"]
    unknown = _with_training_record(digits_model, tmp_path / "unknown.safetensors", record)
    with pytest.raises(EvaluationError, match="would include training images"):
        evaluate(str(unknown), folder)
