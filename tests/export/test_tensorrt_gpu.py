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
