"""INT8 preparation: calibration images through the variant's preprocessing, and ModelOpt Q/DQ insertion."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime as ort
import pytest
from export_helpers import IMG
from PIL import Image

from resnet_hub.export.calibration import find_images, load_calibration_batch
from resnet_hub.export.errors import ExportOptionError


def _images(folder, count, size=(80, 96)):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_calibration_images_are_preprocessed_like_the_weights_expect(source_for, tmp_path):
    source = source_for("myresnet50")
    folder = _images(tmp_path / "calib", 5)
    config = source.data_config(IMG)
    batch = load_calibration_batch(folder, config, limit=4)
    assert batch.shape == (4, 3, *IMG) and batch.dtype == np.float32
    # Normalised with ImageNet mean/std: uniform noise in [0, 1] becomes roughly zero-mean, spread ~[-2, 2.6].
    assert -2.2 < batch.min() < -1.5 and 2.0 < batch.max() < 2.7
    assert len(find_images(folder)) == 5


def test_calibration_folder_errors(tmp_path):
    with pytest.raises(ExportOptionError, match="not found"):
        find_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportOptionError, match="No images"):
        find_images(tmp_path / "empty")


@pytest.mark.skipif(importlib.util.find_spec("modelopt") is None,
                    reason="nvidia-modelopt is not installed (ships with pip install 'resnet-hub[quantize]')")
def test_modelopt_inserts_qdq_nodes_that_onnxruntime_runs(source_for, tmp_path):
    from resnet_hub.export.onnx import OnnxOptions, export_onnx
    from resnet_hub.export.int8_tensorrt import count_qdq_nodes, quantize_int8

    source = source_for("myresnet18")
    export_onnx(source, tmp_path / "fp32", OnnxOptions(exporter="torchscript", img_size=IMG))
    calibration = load_calibration_batch(_images(tmp_path / "calib", 8), source.data_config(IMG))
    qdq = quantize_int8(tmp_path / "fp32" / "model.onnx", tmp_path / "model.qdq.onnx", calibration, method="max")
    counts = count_qdq_nodes(qdq)
    assert counts["QuantizeLinear"] >= 20 and counts["DequantizeLinear"] >= 20  # every conv input and weight
    fp32 = ort.InferenceSession(str(tmp_path / "fp32" / "model.onnx"), providers=["CPUExecutionProvider"])
    # Graph optimisations off: ONNX Runtime's CPU Q/DQ fusions mis-run ModelOpt's fp16-scaled graphs
    # (microsoft/onnxruntime#24711); unfused, each op runs as the ONNX spec (and TensorRT) defines it.
    reference_semantics = ort.SessionOptions()
    reference_semantics.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    int8 = ort.InferenceSession(str(qdq), reference_semantics, providers=["CPUExecutionProvider"])
    a = fp32.run(None, {"input": calibration})[0]
    b = int8.run(None, {"input": calibration})[0]
    assert np.abs(a - b).max() < 0.25 * np.abs(a).max()  # quantised, not broken


@pytest.mark.skipif(importlib.util.find_spec("modelopt") is None,
                    reason="nvidia-modelopt is not installed (ships with pip install 'resnet-hub[quantize]')")
def test_onnx_runtime_int8_export_still_works_after_a_tensorrt_quantization_in_the_same_process(digits_resnet18,
                                                                                               tmp_path):
    """ModelOpt monkeypatches ONNX Runtime's quantizers for good; run in-process, it broke every later CPU int8
    export ("Quantization parameters are not specified for param ..."). It runs in a child process now."""
    from resnet_hub.export.onnx import OnnxOptions, export_onnx
    from resnet_hub.export.int8_tensorrt import quantize_int8
    from resnet_hub.export.source import load_model_source

    source = load_model_source("myresnet18", weights=digits_resnet18)
    export_onnx(source, tmp_path / "fp32", OnnxOptions(img_size=IMG))
    calibration = load_calibration_batch("digits", source.data_config(IMG), limit=64)
    quantize_int8(tmp_path / "fp32" / "model.onnx", tmp_path / "model.qdq.onnx", calibration, method="max")
    result = export_onnx(source, tmp_path / "int8", OnnxOptions(img_size=IMG, precision="int8", calib_data="digits",
                                                                eval_data="digits"))
    assert result.accuracy[0].passed
