"""OpenVINO export (``--format openvino``): IR + manifest, parity in OpenVINO's runtime, the accuracy gate, NNCF
int8, pixel input through PrePostProcessor, and bad input that leaves nothing behind.

Oracles: PyTorch on the same tensors (timm's preprocessing of real digits), OpenVINO's own report of the precision it
compiled, the files' real sha256, and a model that learned something (``digits_model``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from export_helpers import IMG, tree  # noqa: E402
from helpers.cli import run_cli  # noqa: E402

from resnet_hub.export import ExportOptionError, export  # noqa: E402
from resnet_hub.export.onnx import OnnxOptions  # noqa: E402
from resnet_hub.export.openvino import export_openvino  # noqa: E402
from resnet_hub.export.openvino_runtime import OpenVinoConfig, compile_openvino, inference_precision  # noqa: E402
from resnet_hub.weights.io import sha256_of_file  # noqa: E402


def _digits_eval(source):
    from resnet_hub.tasks.evaluate import class_mapping, prepare

    return prepare("digits", source.data_config(None),
                   lambda classes: class_mapping(classes, source.label_names, source.num_classes), limit=64)


@pytest.fixture(scope="module")
def digits_source(digits_model):
    from resnet_hub.export.source import load_model_source

    return load_model_source("myresnet18", weights=digits_model)


def test_int8_export_of_a_trained_model_passes_parity_and_the_gate_and_records_everything(digits_source, tmp_path):
    out = tmp_path / "ov-int8"
    result = export_openvino(digits_source, out, OnnxOptions(precision="int8", calib_data="digits", calib_limit=128,
                                                             eval_data="digits"))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.bin", "model.xml"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "openvino" and manifest["precision"] == "int8" and manifest["verified"]
    for entry in manifest["files"]:  # the manifest hashes what is on disk
        assert sha256_of_file(out / entry["name"]) == entry["sha256"]
    assert {e["name"] for e in manifest["files"]} == {"model.xml", "model.bin"}
    # The IR verified in OpenVINO at batch 1 and N plus the verification images; the ONNX graph it was converted
    # from was checked in ONNX Runtime first (the result reports both).
    (ov_report,) = manifest["verification"]
    assert ov_report["runtime"].startswith("OpenVINO") and ov_report["artifact"] == "model.xml"
    assert result.verifications[0].runtime.startswith("ONNX Runtime")
    assert [c["batch_size"] for c in ov_report["checks"]][:2] == [1, 3]
    assert all(c["inputs"] == "images" for c in ov_report["checks"])
    assert manifest["int8"]["quantizer"].startswith("nncf.quantize")
    assert manifest["int8"]["quantized_ops"].get("Convolution", 0) >= 20  # every conv of a ResNet-18
    assert manifest["accuracy"]["passed"] and manifest["accuracy"]["delta_top1"] >= -1.0
    assert manifest["openvino"]["runtime"]["precision_hint"] == "f32"
    assert manifest["model"]["label_names"] == digits_source.label_names
    assert manifest["versions"]["openvino"] and manifest["versions"]["nncf"]
    # The IR classifies the digits like PyTorch does: the oracle is the trained model on timm's tensors.
    inputs = _digits_eval(digits_source).head(64)
    compiled = compile_openvino(out / "model.xml", OpenVinoConfig(precision_hint="f32"))
    logits = compiled(inputs.numpy())[0]
    with torch.no_grad():
        reference = digits_source.model(inputs).argmax(1).numpy()
    assert (logits.argmax(1) == reference).mean() >= 0.95
    assert result.verified and result.accuracy[0].passed


def test_fp32_runs_fp32_although_the_cpu_plugin_would_pick_bf16(digits_source, tmp_path):
    out = tmp_path / "ov"
    export("myresnet18", "openvino", out, weights=digits_source.weights,
           onnx=OnnxOptions(eval_data="digits"))
    manifest = json.loads((out / "manifest.json").read_text())
    runtime = manifest["openvino"]["runtime"]
    assert runtime["precision_hint"] == "f32" and runtime["inference_precision"] == "fp32"
    assert manifest["verification"][0]["tolerance"]["name"] == "fp32"
    assert max(c["max_rel_diff"] for c in manifest["verification"][0]["checks"]) <= 1e-4
    # What OpenVINO itself picks without the hint is what the manifest's cpu_isa predicts.
    import openvino as ov

    default = inference_precision(ov.Core().compile_model(str(out / "model.xml"), "CPU"))
    isa = manifest["openvino"]["cpu_isa"]
    assert default == ("bf16" if isa["AVX512_BF16"] or isa["AMX"] else "fp32")


def test_fp16_stores_half_weights_and_names_the_arithmetic_that_ran(digits_source, tmp_path):
    fp32, fp16 = tmp_path / "fp32", tmp_path / "fp16"
    export_openvino(digits_source, fp32, OnnxOptions())
    result = export_openvino(digits_source, fp16, OnnxOptions(precision="fp16", eval_data="digits"))
    ratio = (fp16 / "model.bin").stat().st_size / (fp32 / "model.bin").stat().st_size
    assert 0.45 < ratio < 0.55
    manifest = json.loads((fp16 / "manifest.json").read_text())
    runtime = manifest["openvino"]["runtime"]
    runs = runtime["inference_precision"]
    # The oracle: OpenVINO's report for the same model compiled with the recorded hint; f16 only where the CPU has
    # fp16 arithmetic (an f16 request would run bf16 elsewhere, outside fp16's tolerance).
    assert runs == inference_precision(compile_openvino(fp16 / "model.xml",
                                                        OpenVinoConfig(precision_hint=runtime["precision_hint"])))
    assert runtime["precision_hint"] == ("f16" if manifest["openvino"]["cpu_isa"]["AVX512_FP16"] else "f32")
    assert manifest["accuracy"]["runtime"].endswith(f"({runs})")
    if runs != "fp16":
        assert any("no fp16 arithmetic" in w for w in result.warnings)


def test_embedded_preprocessing_takes_uint8_pixels_and_matches_timm_on_real_digits(digits_source, tmp_path):
    out = tmp_path / "pixels"
    export_openvino(digits_source, out, OnnxOptions(embed_preprocessing=True, eval_data="digits"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"][0]["dtype"] == "u8" and manifest["inputs"][0]["shape"] == ["batch", 32, 32, 3]
    assert manifest["preprocessing"]["embedded_in_graph"] and manifest["input"]["layout"] == "NHWC"
    # Real digits as a client sends them: the 8-bit pixels behind timm's tensors (exact for 8-bit images).
    inputs = _digits_eval(digits_source).head(64)
    config = digits_source.data_config(None)
    from resnet_hub.export.runtime import to_uint8_nhwc

    pixels = to_uint8_nhwc(inputs, config["mean"], config["std"])
    logits = compile_openvino(out / "model.xml", OpenVinoConfig(precision_hint="f32"))(pixels)[0]
    with torch.no_grad():
        reference = digits_source.model(inputs).numpy()
    spread = reference.max(1) - reference.min(1)
    assert (np.abs(logits - reference).max(1) / spread).max() < 1e-4
    assert (logits.argmax(1) == reference.argmax(1)).all()


@pytest.mark.parametrize("options,needle", [
    (OnnxOptions(precision="int8"), "needs calibration images"),
    (OnnxOptions(precision="int4"), "Unknown precision 'int4'"),
    (OnnxOptions(img_size=(-1, -1), embed_preprocessing=True), "fixed image size|--img-size must be"),
    (OnnxOptions(precision="int8", calib_data="no-such-folder"), "not found"),
], ids=["int8-without-calibration", "unsupported-precision", "dynamic-size-with-pixels", "missing-calibration"])
def test_bad_requests_raise_one_typed_error_and_write_nothing(options, needle, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ExportOptionError, match=needle):
        export("myresnet18", "openvino", out, onnx=options)
    assert tree(tmp_path) == []


def test_constant_or_unreadable_calibration_images_are_refused_and_nothing_is_left(tmp_path):
    from PIL import Image

    constant = tmp_path / "constant"
    constant.mkdir()
    for i in range(4):
        Image.new("RGB", (40, 40), (90, 90, 90)).save(constant / f"{i}.png")
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    for i in range(3):
        (unreadable / f"{i}.jpg").write_bytes(b"not an image")
    for folder, needle in ((constant, "one constant colour"), (unreadable, "")):
        out = tmp_path / f"out-{folder.name}"
        with pytest.raises(ExportOptionError, match=needle):
            export("myresnet18", "openvino", out, onnx=OnnxOptions(precision="int8", calib_data=str(folder),
                                                                   img_size=IMG))
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["constant", "unreadable"]


def test_cli_bad_input_is_one_line_and_a_missing_package_names_the_extra(tmp_path):
    proc = run_cli("export", "myresnet18", "--format", "openvino", "--precision", "int8", "--output",
                   str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1
    assert "--calib-data" in proc.stderr
    proc = run_cli("export", "myresnet18", "--format", "openvino", "--output", str(tmp_path / "o"),
                   blocked=("openvino",), cwd=tmp_path)
    assert proc.returncode == 1 and "resnet-hub[openvino]" in proc.stderr and "Traceback" not in proc.stderr
    assert tree(tmp_path) == []
