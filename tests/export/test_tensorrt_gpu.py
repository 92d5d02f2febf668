"""TensorRT engines on a real GPU. Skipped, with the reason, where TensorRT or CUDA is missing."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from export_helpers import IMG

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_CUDA = torch.cuda.is_available()

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not HAS_TRT, reason="tensorrt is not installed (pip install 'resnet-hub[tensorrt]')"),
    pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device visible to torch"),
]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_builds_runs_and_matches_pytorch(precision, source_for, tmp_path):
    from resnet_hub.export.onnx import OnnxOptions
    from resnet_hub.export.tensorrt import TensorRTModule, TensorRTOptions, export_tensorrt

    source = source_for("myresnet18")
    result = export_tensorrt(source, tmp_path / "trt", OnnxOptions(img_size=IMG),
                             TensorRTOptions(precision=precision, max_batch=8, opt_batch=4,
                                             timing_cache=tmp_path / "timing.cache"))
    assert result.verified, [r.describe() for r in result.verifications]
    assert (tmp_path / "trt" / "model.plan").is_file() and (tmp_path / "timing.cache").is_file()
    module = TensorRTModule(tmp_path / "trt" / "model.plan")
    x = torch.randn(3, 3, *IMG, device="cuda")
    with torch.no_grad():
        reference = source.model.cuda()(x)
    assert (module(x).float() - reference).abs().max().item() < 5e-2


def test_module_refuses_batch_outside_profile(source_for, tmp_path):
    from resnet_hub.export.errors import ProfileShapeError
    from resnet_hub.export.onnx import OnnxOptions
    from resnet_hub.export.tensorrt import TensorRTModule, TensorRTOptions, export_tensorrt

    export_tensorrt(source_for("myresnet18"), tmp_path / "trt", OnnxOptions(img_size=IMG),
                    TensorRTOptions(precision="fp32", max_batch=4, use_timing_cache=False))
    module = TensorRTModule(tmp_path / "trt" / "model.plan")
    with pytest.raises(ProfileShapeError, match="outside the engine's optimization profile"):
        module(torch.randn(5, 3, *IMG, device="cuda"))


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_engine_with_embedded_preprocessing_takes_uint8_pixels(precision, digits_resnet18, tmp_path):
    """--embed-preprocessing on TensorRT: the engine takes (N, H, W, 3) uint8 pixels and agrees with PyTorch after
    timm's transform on real digits; an int8 engine is calibrated on pixels. Float batches are refused."""
    import json

    from helpers.data import stacked
    from resnet_hub.tasks.data import eval_transform, open_labelled
    from resnet_hub.errors import InputShapeError
    from resnet_hub.export.onnx import OnnxOptions
    from resnet_hub.export.runtime import to_uint8_nhwc
    from resnet_hub.export.source import load_model_source
    from resnet_hub.export.tensorrt import TensorRTModule, TensorRTOptions, export_tensorrt

    source = load_model_source("myresnet18", weights=digits_resnet18)
    config = source.data_config((32, 32))
    export_tensorrt(source, tmp_path / "trt", OnnxOptions(img_size=(32, 32), embed_preprocessing=True),
                    TensorRTOptions(precision=precision, max_batch=64, calib_data="digits" if precision == "int8"
                                    else None, use_timing_cache=False, engine_cache=False))
    manifest = json.loads((tmp_path / "trt" / "manifest.json").read_text())
    assert manifest["input"]["dtype"] == "uint8" and manifest["input"]["shape"] == ["batch", 32, 32, 3]
    assert manifest["preprocessing"]["embedded_in_graph"] is True
    module = TensorRTModule(tmp_path / "trt" / "model.plan")
    assert module.sample_shape == (32, 32, 3) and module.input_dtype == torch.uint8
    tensors, labels, _ = stacked(open_labelled("digits", "val"), eval_transform(config), limit=64)
    pixels = torch.from_numpy(to_uint8_nhwc(tensors, config["mean"], config["std"])).cuda()
    with torch.no_grad():
        reference = source.model.eval()(tensors).argmax(1)
    engine = module(pixels).float().cpu().argmax(1)
    assert (engine == reference).float().mean().item() >= 0.97
    with pytest.raises(InputShapeError, match="preprocessing embedded"):
        module(tensors.permute(0, 2, 3, 1).contiguous().cuda())
