"""--embed-preprocessing: the graph takes decoded uint8 RGB pixels (NHWC) and normalises them itself.

The oracle is PyTorch on the same images after timm's standard eval transform; the graph is fed pixels made
independently of the export code (PIL resize + centre crop, the first two steps of that same transform).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from resnet_hub.tasks.data import eval_transform, open_labelled
from resnet_hub.export.errors import ExportOptionError
from resnet_hub.export.int8_onnxruntime import input_path_nodes
from resnet_hub.export.onnx import OnnxOptions, export_onnx
from resnet_hub.export.source import load_model_source
from resnet_hub.export.triton import TritonOptions, config_as_dict, export_triton, read_config

IMG = (32, 32)
VAL_IMAGES = 120


def _pixels_and_tensors(data_config, n: int = VAL_IMAGES):
    """(uint8 NHWC pixels, timm eval tensors, labels) for the first ``n`` digits val images."""
    images = open_labelled("digits", "val")
    transform = eval_transform(data_config)
    resize_and_crop = transform.transforms[:2]  # timm's Resize + CenterCrop: what a client does before sending
    pixels, tensors, labels = [], [], []
    for index in range(n):
        image = images.read(index)
        tensors.append(transform(image))
        for step in resize_and_crop:
            image = step(image)
        pixels.append(np.asarray(image, dtype=np.uint8))
        labels.append(images.label(index))
    return np.stack(pixels), torch.stack(tensors), np.array(labels)


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_embedded_fp32_graph_on_uint8_pixels_matches_pytorch_after_timm_preprocessing(digits_resnet18, tmp_path):
    source = load_model_source("myresnet18", weights=digits_resnet18)
    result = export_onnx(source, tmp_path / "out", OnnxOptions(img_size=IMG, embed_preprocessing=True,
                                                               eval_data="digits"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["export"]["embed_preprocessing"] is True
    assert manifest["inputs"] == [dict(name="input", dtype="uint8", shape=["batch", 32, 32, 3])]
    assert manifest["input"]["layout"] == "NHWC" and manifest["input"]["dtype"] == "uint8"
    assert manifest["preprocessing"]["embedded_in_graph"] is True
    assert manifest["accuracy"]["passed"] and manifest["accuracy"]["delta_top1"] == 0.0
    assert "uint8" in manifest["verification"][0]["runtime"]
    assert "np.uint8" in result.run_hint

    pixels, tensors, labels = _pixels_and_tensors(source.data_config(IMG))
    logits = _session(tmp_path / "out" / "model.onnx").run(None, {"input": pixels})[0]
    with torch.no_grad():
        reference = source.model(tensors).numpy()
    spread = reference.max(axis=1) - reference.min(axis=1)
    assert np.max(np.abs(logits - reference).max(axis=1) / spread) < 1e-4
    assert (logits.argmax(1) == reference.argmax(1)).all()
    assert (reference.argmax(1) == labels).mean() > 0.85  # the model has learned: the parity is about decisions


def test_int8_with_embedded_preprocessing_keeps_the_pixel_path_fp32_and_passes_the_gate(digits_resnet18, tmp_path):
    source = load_model_source("myresnet18", weights=digits_resnet18)
    export_onnx(source, tmp_path / "out", OnnxOptions(img_size=IMG, embed_preprocessing=True, precision="int8",
                                                      calib_data="digits", eval_data="digits"))
    path = tmp_path / "out" / "model.onnx"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["accuracy"]["passed"] and manifest["accuracy"]["delta_top1"] >= -1.0
    assert manifest["int8"]["calibration_images"] == 512 and manifest["input"]["dtype"] == "uint8"
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    # cast, /255, -mean, /std, transpose: none of them between Q/DQ (the first conv quantizes its input once).
    by_name = {n.name: n for n in graph.node}
    pixel_path = [by_name[name].op_type for name in input_path_nodes(path)]
    assert "Cast" in pixel_path and "Transpose" in pixel_path
    assert pixel_path.count("QuantizeLinear") == 1 and "DequantizeLinear" in pixel_path
    upstream_of_q = [op for op in pixel_path if op not in ("QuantizeLinear", "DequantizeLinear")]
    assert set(upstream_of_q) <= {"Cast", "Div", "Sub", "Mul", "Add", "Transpose", "Constant"}

    pixels, tensors, labels = _pixels_and_tensors(source.data_config(IMG))
    logits = _session(path).run(None, {"input": pixels})[0]
    with torch.no_grad():
        reference = source.model(tensors).numpy()
    assert (logits.argmax(1) == reference.argmax(1)).mean() >= 0.95
    assert (logits.argmax(1) == labels).mean() >= (reference.argmax(1) == labels).mean() - 0.02


def test_triton_config_takes_uint8_pixels_hwc(source_for, tmp_path):
    source = source_for("myresnet18")
    export_triton(source, tmp_path / "repo", OnnxOptions(img_size=IMG, embed_preprocessing=True),
                  TritonOptions(model_name="r18", max_batch_size=8))
    model_dir = tmp_path / "repo" / "r18_onnx"
    config = config_as_dict(read_config(model_dir / "config.pbtxt"))
    assert config["input"][0]["data_type"] == "TYPE_UINT8" and config["input"][0]["dims"] == ["32", "32", "3"]
    assert config["output"][0]["data_type"] == "TYPE_FP32"
    readme = (model_dir / "README.md").read_text()
    assert "UINT8" in readme and "Do **not** normalise" in readme and '"UINT8"' in readme
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["export"]["embed_preprocessing"] is True and manifest["input"]["shape"] == ["batch", 32, 32, 3]
    session = _session(model_dir / "1" / "model.onnx")
    assert session.get_inputs()[0].type == "tensor(uint8)"
    assert session.run(None, {"input": np.zeros((2, 32, 32, 3), np.uint8)})[0].shape == (2, 1000)


@pytest.mark.parametrize("img_size", [(-1, -1), (None, None)], ids=["minus-one", "none"])
def test_embed_preprocessing_with_a_dynamic_image_size_is_refused_and_writes_nothing(tmp_path, img_size):
    with pytest.raises(ExportOptionError, match="fixed image size"):
        export_onnx("myresnet18", tmp_path / "out", OnnxOptions(img_size=img_size, embed_preprocessing=True))
    assert not (tmp_path / "out").exists()


def test_cli_embed_preprocessing_with_a_dynamic_image_size_exits_1_with_one_line(tmp_path):
    from helpers.cli import run_cli

    result = run_cli("export", "myresnet18", "--img-size", "-1", "-1", "--embed-preprocessing",
                     "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "needs a fixed image size" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_wrappers_leave_the_wrapped_model_in_the_mode_they_found_it(source_for):
    from resnet_hub.export.preprocessing_graph import EmbeddedPreprocessing, PixelGrid

    model = source_for("myresnet18").model.eval()
    for wrapper in (EmbeddedPreprocessing, PixelGrid):
        wrapped = wrapper(model, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        was_training = wrapped.training
        wrapped.eval()
        wrapped.train(was_training)  # what export and verification do around their work
        assert not model.training


def test_verify_reruns_parity_of_an_embedded_export_on_pixels(digits_resnet18, tmp_path):
    """`resnet-hub verify` feeds a pixel-input graph pixels, as the export did (it used to feed floats and fail
    every embedded export); a graph whose normalisation is changed after export is caught."""
    from helpers.cli import run_cli

    out = tmp_path / "out"
    export_onnx("myresnet18", out, OnnxOptions(img_size=IMG, embed_preprocessing=True), weights=digits_resnet18)
    result = run_cli("verify", str(out), "--weights", str(digits_resnet18))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uint8 pixel input" in result.stdout and "passed" in result.stdout

    graph = onnx.load(str(out / "model.onnx"))
    divisor = next(n for n in graph.graph.node if n.op_type == "Div")  # the / 255 of ToTensor
    constant = next(t for t in graph.graph.initializer if t.name in divisor.input)
    constant.CopyFrom(onnx.numpy_helper.from_array(np.full_like(onnx.numpy_helper.to_array(constant), 128.0),
                                                   constant.name))
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    onnx.save(graph, str(tampered / "model.onnx"))
    from resnet_hub.export.audit import rerun_parity
    from resnet_hub.export.manifest import read_manifest

    runs = rerun_parity(tampered, read_manifest(out / "manifest.json"), digits_resnet18)
    assert [r.status for r in runs] == ["failed"], runs
