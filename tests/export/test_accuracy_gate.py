"""The accuracy gate on a model that has learned: good exports pass, broken int8 calibration is refused.

Every check here runs the fine-tuned digits model (``digits_model`` fixture) and real handwritten digits, where a
wrong answer is visible; on random weights the same checks pass trivially.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_helpers import tree
from helpers.cli import run_cli
from PIL import Image

from resnet_hub.export.errors import AccuracyGateError, ExportOptionError
from resnet_hub.export.onnx import OnnxOptions, export_onnx


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_every_precision_passes_the_gate_on_the_trained_model(precision, digits_model, tmp_path):
    options = OnnxOptions(precision=precision, eval_data="digits",
                          calib_data="digits" if precision == "int8" else None)
    result = export_onnx("myresnet18", tmp_path / precision, options, weights=digits_model)
    accuracy = json.loads((tmp_path / precision / "manifest.json").read_text())["accuracy"]
    assert accuracy["n"] == 359 and accuracy["passed"] is True
    assert accuracy["reference_top1"] >= 0.9  # the model has learned
    assert accuracy["delta_top1"] == pytest.approx(100 * (accuracy["artifact_top1"] - accuracy["reference_top1"]))
    assert -accuracy["delta_top1"] <= {"fp32": 0.1, "fp16": 0.5, "int8": 1.0}[precision]
    assert accuracy["top1_agreement"] >= (0.99 if precision == "int8" else 0.997)
    report = result.verifications[0]
    assert any(check.inputs == "images" for check in report.checks)  # parity judged on real images, not noise
    assert report.tolerance.name == precision
    if precision == "int8":
        manifest = result.manifest
        assert manifest["int8"]["calibration_images"] == 512 and manifest["int8"]["quantized_ops"]["Conv"] == 20


def test_int8_calibrated_on_blank_images_is_refused_and_nothing_is_written(digits_model, tmp_path):
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(120):
        Image.new("RGB", (8, 8), 0).save(blank / f"{i}.png")
    out = tmp_path / "out"
    proc = run_cli("export", "myresnet18", "--weights", str(digits_model), "--output", str(out), "--precision",
                   "int8", "--calib-data", str(blank), "--eval-data", "digits", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    assert "Traceback" not in proc.stderr
    # Refused up front (a constant calibration set), else by parity on real images or the accuracy gate: either
    # way refused before anything is written, with the fix.
    assert ("one constant colour" in proc.stderr or "does not match PyTorch" in proc.stderr
            or "top-1 points" in proc.stderr), proc.stderr
    assert "calibrat" in proc.stderr.lower()
    assert not out.exists() and [p for p in tree(tmp_path) if "staging" in p] == []


def test_int8_calibrated_with_other_preprocessing_is_refused(digits_model, tmp_path):
    """The timm #1412 failure: calibration images normalised differently from training. The gate sees it."""
    from helpers.data import stacked
    from resnet_hub.tasks.data import eval_transform, open_calibration
    from resnet_hub.tasks.evaluate import class_mapping, prepare, torch_logits
    from resnet_hub.export.accuracy import accuracy_gate
    from resnet_hub.export.int8_onnxruntime import quantize_for_cpu
    from resnet_hub.export.onnx import export_onnx_model
    from resnet_hub.export.runtime import onnx_logits
    from resnet_hub.zoo.model_loading import load_model

    loaded = load_model(None, weights=digits_model)
    right = loaded.data_config()
    wrong = dict(right, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # [0, 1] pixels, no normalisation
    fp32 = export_onnx_model(loaded.model, tmp_path / "fp32.onnx", input_shape=(2, 3, 32, 32))
    calibration = stacked(open_calibration("digits", 256), eval_transform(wrong))[0].numpy()
    quantize_for_cpu(fp32, tmp_path / "int8.onnx", calibration)
    prepared = prepare("digits", right, lambda c: class_mapping(c, loaded.label_names, loaded.num_classes))
    with pytest.raises(AccuracyGateError, match="loses") as caught:
        accuracy_gate(torch_logits(loaded.model), onnx_logits(tmp_path / "int8.onnx"), prepared, precision="int8",
                      runtime="ONNX Runtime int8")
    assert caught.value.report.artifact_top1 < 0.5 <= caught.value.report.reference_top1


def test_eval_data_whose_classes_do_not_fit_the_model_is_refused_before_export(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("export", "myresnet18", "--output", str(out), "--img-size", "32", "32", "--eval-data", "digits",
                   cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "10 classes but the model predicts 1000" in proc.stderr and not out.exists()


@pytest.mark.parametrize("options,message", [
    (dict(precision="int8"), "--calib-data"),
    (dict(precision="int4"), "Unknown precision"),
    (dict(half=True, precision="int8"), "--half means --precision fp16"),
    (dict(max_accuracy_drop=-1.0), "--max-accuracy-drop"),
])
def test_bad_precision_options_fail_before_any_work(options, message, tmp_path):
    with pytest.raises(ExportOptionError, match=message):
        export_onnx("myresnet18", tmp_path / "out", OnnxOptions(**options))
    assert not (tmp_path / "out").exists()


def test_gate_allowance_can_be_raised_and_is_recorded(digits_model, tmp_path):
    result = export_onnx("myresnet18", tmp_path / "o", OnnxOptions(precision="fp16", eval_data="digits",
                                                                   max_accuracy_drop=2.5), weights=digits_model)
    assert result.manifest["accuracy"]["max_accuracy_drop"] == 2.5
    assert result.manifest["export"]["precision"] == "fp16"
    scores = np.array([result.manifest["accuracy"]["reference_top1"], result.manifest["accuracy"]["artifact_top1"]])
    assert (scores > 0.9).all()
