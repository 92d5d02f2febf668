"""Bad requests through the library API: typed errors with a fix in the message, and no files left."""

from __future__ import annotations

import pytest
from export_helpers import IMG, tree

from resnet_hub.export import ExportOptionError, OutputExistsError, ProfileShapeError, export
from resnet_hub.export.onnx import OnnxOptions
from resnet_hub.export.tensorrt import TensorRTOptions
from resnet_hub.errors import UnknownModelError, WeightsChoiceError


@pytest.mark.parametrize("name,kwargs,error,needle", [
    ("nosuch", {}, UnknownModelError, "Unknown model 'nosuch'"),
    ("myresnet18.nosuch", {}, ExportOptionError, "has no pretrained tag 'nosuch'"),
    ("myresnet18", dict(format="coreml"), ExportOptionError, "Unknown format 'coreml'"),
    ("myresnet18", dict(onnx=OnnxOptions(img_size=(16, 16))), ExportOptionError, "below the 32 px"),
    ("myresnet18", dict(onnx=OnnxOptions(exporter="jit")), ExportOptionError, "Unknown exporter 'jit'"),
    ("myresnet18", dict(onnx=OnnxOptions(batch_size=0)), ExportOptionError, "--batch-size must be >= 1"),
    ("myresnet18", dict(format="tensorrt", tensorrt=TensorRTOptions(min_batch=8, opt_batch=4)), ProfileShapeError,
     "min <= opt <= max"),
    ("myresnet18", dict(format="tensorrt", onnx=OnnxOptions(dynamic_batch=False, batch_size=2),
                        tensorrt=TensorRTOptions(min_batch=1)), ProfileShapeError, "--min-batch 1 does not fit"),
    ("myresnet18", dict(format="tensorrt", tensorrt=TensorRTOptions(precision="int4")), ExportOptionError,
     "Unknown precision 'int4'"),
    ("myresnet18", dict(pretrained=True, weights="w.safetensors"), WeightsChoiceError, "not both"),
    ("myresnet18", dict(onnx=OnnxOptions(img_size=(100000, 100000))), ExportOptionError,
     "--img-size must be two sizes of 32-4096 px"),
    ("myresnet18", dict(onnx=OnnxOptions(max_accuracy_drop=2.0)), ExportOptionError,
     "add --eval-data SRC"),
    ("myresnet18", dict(format="triton", onnx=OnnxOptions(max_accuracy_drop=0.0)), ExportOptionError,
     "add --eval-data SRC"),
])
def test_bad_request_raises_typed_error_and_writes_nothing(name, kwargs, error, needle, tmp_path):
    with pytest.raises(error, match=needle.replace("(", r"\(")):
        export(name, output=tmp_path / "out", **kwargs)
    assert tree(tmp_path) == []


def test_existing_output_refused_before_the_model_is_built(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    import resnet_hub.export.onnx as onnx_module

    def must_not_run(*args, **kwargs):
        raise AssertionError("the model must not be built when the output is refused")

    monkeypatch.setattr(onnx_module, "load_model_source", must_not_run)
    with pytest.raises(OutputExistsError, match="manifest.json already exists"):
        export("myresnet18", output=out, onnx=OnnxOptions(img_size=IMG))
    assert tree(tmp_path) == ["out", "out/manifest.json"]


class _BatchDependent(__import__("torch").nn.Module):
    """Python control flow on the batch size: tracing bakes in the traced branch, a real export pitfall."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        logits = self.inner(x)
        return logits if x.shape[0] == 2 else logits * 2


def test_graph_that_does_not_reproduce_pytorch_is_rejected_and_not_written(source_for, tmp_path):
    from dataclasses import replace

    from resnet_hub.export import VerificationError
    from resnet_hub.export.onnx import export_onnx

    source = source_for("myresnet18")
    broken = replace(source, model=_BatchDependent(source.model).eval())
    with pytest.raises(VerificationError, match="does not match PyTorch") as info:
        export_onnx(broken, tmp_path / "out", OnnxOptions(exporter="torchscript", img_size=IMG))
    assert info.value.report is not None and not info.value.report.passed
    assert tree(tmp_path) == []


@pytest.mark.parametrize("args,needle", [
    (("--img-size", "100000", "100000"), "--img-size must be two sizes of 32-4096 px"),
    (("--max-accuracy-drop", "5"), "--max-accuracy-drop sets the accuracy gate's allowance"),
])
def test_cli_refuses_hostile_sizes_and_an_unusable_gate_in_one_line(args, needle, tmp_path):
    from helpers.cli import run_cli

    proc = run_cli("export", "myresnet18", "--output", str(tmp_path / "out"), *args, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert tree(tmp_path) == []
