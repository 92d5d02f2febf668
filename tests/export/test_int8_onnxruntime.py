"""int8 ONNX for CPUs (ONNX Runtime QDQ): integer kernels after ORT's optimisation, and bad calibration input."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers.cli import run_cli

from resnet_hub.export.errors import ExportOptionError
from resnet_hub.export.int8_onnxruntime import MIN_CALIBRATION_IMAGES
from resnet_hub.export.onnx import OnnxOptions, export_onnx

IMG = (32, 32)


def _optimised_ops(path, tmp_path) -> Counter:
    """Op types of the graph ONNX Runtime actually runs (after its QDQ fusions, ORT_ENABLE_ALL)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return Counter(n.op_type for n in onnx.load(str(tmp_path / "optimised.onnx")).graph.node)


def test_int8_graph_runs_every_conv_residual_add_and_the_classifier_on_integer_kernels(digits_resnet18, tmp_path):
    result = export_onnx("myresnet18", tmp_path / "out", OnnxOptions(img_size=IMG, precision="int8",
                                                                     calib_data="digits", eval_data="digits"),
                         weights=digits_resnet18)
    assert result.accuracy[0].passed and result.accuracy[0].delta_top1 >= -1.0
    ops = _optimised_ops(tmp_path / "out" / "model.onnx", tmp_path)
    fp32 = Counter(n.op_type for n in onnx.load(str(tmp_path / "out" / "model.onnx")).graph.node)
    assert ops["QLinearConv"] == fp32["Conv"] == 20 and ops["Conv"] == 0  # resnet18: 17 + 3 downsample convs
    assert ops["QLinearAdd"] == 8 and ops["Add"] == 0  # the residual adds stay in uint8
    assert ops["QGemm"] == 1 and ops["Gemm"] == 0


def test_int8_without_calibration_data_says_what_to_pass(tmp_path):
    with pytest.raises(ExportOptionError, match="--calib-data"):
        export_onnx("myresnet18", tmp_path / "out", OnnxOptions(img_size=IMG, precision="int8"))
    assert not (tmp_path / "out").exists()


def test_calibration_folder_without_readable_images_is_an_error_and_writes_nothing(tmp_path):
    folder = tmp_path / "calib"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ExportOptionError, match="calib"):
        export_onnx("myresnet18", tmp_path / "out", OnnxOptions(img_size=IMG, precision="int8",
                                                                calib_data=str(folder)))
    assert not (tmp_path / "out").exists()


def test_too_few_calibration_images_warn_on_the_cli_and_the_manifest_records_the_count(digits_model, tmp_path):
    """Three real digits: enough for the trained model to keep its decisions (on random weights and noise the
    top-1 check would hinge on near-ties, and differ between CPUs), too few to trust, so the CLI warns."""
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = tmp_path / "calib"
    folder.mkdir()
    digits = load_digits()
    for i in range(3):
        Image.fromarray(np.uint8(digits.images[i] * 255 / 16)).save(folder / f"{i}.png")
    result = run_cli("export", "myresnet18", "--weights", str(digits_model), "--format", "onnx", "--img-size", "32",
                     "32", "--precision", "int8", "--calib-data", str(folder), "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "Warning:" in result.stderr and "only 3 calibration image(s)" in result.stderr
    assert str(MIN_CALIBRATION_IMAGES) in result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["int8"]["calibration_images"] == 3
    assert any("only 3 calibration image(s)" in w for w in manifest["warnings"])


def _image_folder(folder, images) -> str:
    from PIL import Image

    folder.mkdir()
    for index, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{index}.png")
    return str(folder)


def _a_digit(index: int = 0) -> np.ndarray:
    from sklearn.datasets import load_digits

    digit = load_digits().images[index]
    return np.repeat(np.kron(digit / 16.0 * 255, np.ones((4, 4)))[..., None], 3, axis=2).astype(np.uint8)


@pytest.mark.parametrize("case,needle", [
    ("black", "one constant colour"),
    ("near-constant", "blank or nearly so"),
    ("one-image", "all the same image"),
])
def test_constant_or_near_constant_calibration_sets_are_refused(case, needle, digits_model, tmp_path):
    """8 all-black images passed the export's check and gave a graph scoring 50.7 % instead of 96.9 %: refused now,
    before quantizing, and nothing is written."""
    rng = np.random.default_rng(0)
    if case == "black":
        images = [np.zeros((32, 32, 3), np.uint8)] * 8
    elif case == "near-constant":
        images = [np.full((32, 32, 3), 100 + i, np.uint8) + rng.integers(0, 2, (32, 32, 3)).astype(np.uint8)
                  for i in range(0, 80, 10)]
    else:
        images = [_a_digit(3)] * 8
    calib = _image_folder(tmp_path / "calib", images)
    with pytest.raises(ExportOptionError, match=needle):
        export_onnx("myresnet18", tmp_path / "out", OnnxOptions(img_size=(32, 32), precision="int8", calib_data=calib),
                    weights=digits_model)
    assert not (tmp_path / "out").exists()


def test_the_calibration_check_accepts_real_images_and_refuses_bad_arrays():
    from resnet_hub.export.calibration_array import check_calibration_array

    real = np.stack([_a_digit(i) for i in range(16)])
    assert check_calibration_array(real).dtype == np.uint8
    floats = (real.transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.25
    assert check_calibration_array(floats).dtype == np.float32
    with pytest.raises(ExportOptionError, match="NaN"):
        check_calibration_array(np.full((2, 3, 8, 8), np.nan))
    with pytest.raises(ExportOptionError, match="non-empty"):
        check_calibration_array(np.zeros((0, 3, 8, 8), np.float32))


def test_int8_without_eval_data_is_also_checked_on_held_out_images(digits_model, tmp_path):
    """The calibration source's images the quantizer never saw are compared with PyTorch besides the calibration
    images, and the manifest says how many."""
    result = export_onnx("myresnet18", tmp_path / "out", OnnxOptions(img_size=(32, 32), precision="int8",
                                                                     calib_data="digits", calib_limit=100),
                         weights=digits_model)
    record = result.manifest["verification_images"]
    assert record["held_out"] == 64 and record["n"] == 64 + 64 and result.manifest["int8"]["calibration_images"] == 100
    assert any(c.inputs == "images" and c.batch_size == 128 for c in result.verifications[0].checks)
