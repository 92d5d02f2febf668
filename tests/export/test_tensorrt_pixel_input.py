"""TensorRT engines with --embed-preprocessing, as far as they can be proven without a GPU.

What runs here: the int8 Q/DQ graph TensorRT would parse for a pixel-input model (ModelOpt, calibrated on uint8
pixels), judged by ONNX Runtime against PyTorch on real digits; the input check ``TensorRTModule`` applies to
every batch; and that the export now gets as far as the environment. The binding calls (pixel profile, UINT8
input) are in tests/tensorrt_conformance; the engine itself on a GPU in test_tensorrt_gpu.py.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from helpers.data import stacked

from resnet_hub.tasks.data import eval_transform, open_labelled
from resnet_hub.errors import InputShapeError
from resnet_hub.export.onnx import OnnxOptions, export_onnx
from resnet_hub.export.runtime import to_uint8_nhwc
from resnet_hub.export.source import load_model_source
from resnet_hub.export.tensorrt import TensorRTOptions, check_engine_input, int8_parse_graph

IMG = (32, 32)


@pytest.mark.skipif(importlib.util.find_spec("modelopt") is None,
                    reason="nvidia-modelopt is not installed (ships with pip install 'resnet-hub[quantize]')")
def test_int8_graph_for_tensorrt_of_a_pixel_input_model_is_calibrated_on_pixels(digits_resnet18, tmp_path):
    source = load_model_source("myresnet18", weights=digits_resnet18)
    config = source.data_config(IMG)
    export_onnx(source, tmp_path / "fp32", OnnxOptions(img_size=IMG, embed_preprocessing=True))
    options = TensorRTOptions(precision="int8", calib_data="digits", calib_limit=256)
    qdq = int8_parse_graph(tmp_path / "fp32" / "model.onnx", tmp_path / "model.qdq.onnx", options, config,
                           pixel_input=True)

    graph = onnx.load(str(qdq))
    (graph_input,) = graph.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim][1:] == [32, 32, 3]
    quantized_convs = {n.input[0] for n in graph.graph.node if n.op_type == "DequantizeLinear"}
    assert sum(n.op_type == "Conv" for n in graph.graph.node) == 20 and len(quantized_convs) >= 40

    val = open_labelled("digits", "val")
    tensors, labels, _ = stacked(val, eval_transform(config))
    labels = np.asarray(labels)
    with torch.no_grad():
        reference = source.model.eval()(tensors).numpy()
    # ONNX Runtime with its graph optimisations off runs each Q/DQ op as the ONNX spec defines it, the semantics
    # TensorRT implements (ORT's CPU Q/DQ fusions mis-run ModelOpt's fp16-scaled graph: with them on, this very
    # graph agrees on about half the images; microsoft/onnxruntime#24711, #25259).
    options_ = ort.SessionOptions()
    options_.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(qdq), options_, providers=["CPUExecutionProvider"])
    int8 = session.run(None, {"input": to_uint8_nhwc(tensors, config["mean"], config["std"])})[0]
    assert (reference.argmax(1) == labels).mean() >= 0.9  # the model has learned
    assert (int8.argmax(1) == reference.argmax(1)).mean() >= 0.97
    assert (int8.argmax(1) == labels).mean() >= (reference.argmax(1) == labels).mean() - 0.02


@pytest.mark.parametrize("shape,dtype,engine_dtype,message", [
    ((2, 3, 32, 32), torch.uint8, torch.uint8, "decoded uint8 RGB pixels (batch, 32, 32, 3), NHWC"),  # NCHW pixels
    ((2, 32, 32, 3), torch.float32, torch.uint8, "preprocessing embedded"),  # normalised floats to a pixel engine
    ((2, 32, 32, 3), torch.uint8, torch.float32, "Normalise the pixels first"),  # raw pixels to a float engine
    ((2, 3, 32, 32), torch.int64, torch.float32, "--embed-preprocessing"),
    ((3, 32, 32), torch.float32, torch.float32, "normalised float batch (batch, 3, 32, 32)"),
])
def test_engine_input_check_refuses_what_the_engine_would_misread(shape, dtype, engine_dtype, message):
    sample = (32, 32, 3) if engine_dtype == torch.uint8 else (3, 32, 32)
    with pytest.raises(InputShapeError) as caught:
        check_engine_input(shape, dtype, sample, engine_dtype)
    assert message in str(caught.value)


@pytest.mark.parametrize("shape,dtype,sample,engine_dtype", [
    ((4, 32, 32, 3), torch.uint8, (32, 32, 3), torch.uint8),
    ((4, 3, 32, 32), torch.float16, (3, 32, 32), torch.float32),  # cast by the module, as before
])
def test_engine_input_check_accepts_what_the_engine_takes(shape, dtype, sample, engine_dtype):
    check_engine_input(shape, dtype, sample, engine_dtype)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available(),
                    reason="TensorRT and CUDA are here: test_tensorrt_gpu.py builds the engine instead")
@pytest.mark.parametrize("fmt", ["tensorrt", "triton"])
def test_embedded_tensorrt_export_is_no_longer_refused_it_needs_only_tensorrt_and_a_gpu(fmt, tmp_path):
    from resnet_hub.errors import ResNetHubError
    from resnet_hub.export import export
    from resnet_hub.export.errors import ExportOptionError
    from resnet_hub.export.triton import TritonOptions

    with pytest.raises(ResNetHubError) as caught:
        export("myresnet18", fmt, tmp_path / "out", onnx=OnnxOptions(img_size=IMG, embed_preprocessing=True),
               triton=TritonOptions(include_tensorrt=True) if fmt == "triton" else None)
    assert not isinstance(caught.value, ExportOptionError), caught.value
    assert "tensorrt" in str(caught.value).lower() and not (tmp_path / "out").exists()


def test_fp16_graph_for_tensorrt_of_a_pixel_input_model_passes_the_fp16_gate(digits_resnet18, tmp_path):
    """Strongly typed TensorRT (10.12+, 11) takes its fp16 precision from an fp16 ONNX graph; with embedded
    preprocessing that graph keeps its uint8 input and casts inside. ONNX Runtime judges it on real digits."""
    from resnet_hub.export.tensorrt_plan import plan_build, BatchProfile

    plan = plan_build("11.0", "fp16", profile=BatchProfile(1, 4, 8))
    assert plan.onnx_half  # the graph export_tensorrt builds for this plan is the one below
    result = export_onnx("myresnet18", tmp_path / "fp16", OnnxOptions(img_size=IMG, embed_preprocessing=True,
                                                                      half=plan.onnx_half, eval_data="digits"),
                         weights=digits_resnet18)
    (graph_input,) = onnx.load(str(tmp_path / "fp16" / "model.onnx")).graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    accuracy = result.accuracy[0]
    assert accuracy.passed and accuracy.reference_top1 >= 0.9 and accuracy.top1_agreement >= 0.99
