"""Both exporters, both file layouts, fp16, static batch, opset ranges and the low-level writer."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_helpers import IMG, tree

from resnet_hub.export.errors import ExportOptionError
from resnet_hub.export.files import leftover_staging
from resnet_hub.export.onnx import OnnxOptions, export_onnx, export_onnx_model
from resnet_hub.export.verify import FP16, FP32, compare_logits


def _ort_logits(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x.numpy()})[0]


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize("single_file", [True, False], ids=["single-file", "external-data"])
def test_exporter_and_layout_load_in_ort_and_match(exporter, single_file, source_for, tmp_path):
    source = source_for("myresnet18")
    out = tmp_path / "out"
    result = export_onnx(source, out, OnnxOptions(exporter=exporter, single_file=single_file, img_size=IMG,
                                                  batch_size=2))
    assert result.verified
    files = sorted(p.name for p in out.iterdir())
    expected = ["manifest.json", "model.onnx"] + ([] if single_file else ["model.onnx.data"])
    assert files == sorted(expected)
    if not single_file:  # the graph is small, the weights are in the data file it names
        assert (out / "model.onnx").stat().st_size < 1 << 20
        assert (out / "model.onnx.data").stat().st_size > 40 << 20
    # Independently of the export's own check: load from disk and compare at a batch never traced.
    x = torch.randn(5, 3, *IMG)
    with torch.no_grad():
        expected_logits = source.model(x).numpy()
    assert compare_logits(expected_logits, _ort_logits(out / "model.onnx", x), FP32).passed
    graph = onnx.load(str(out / "model.onnx"), load_external_data=False)
    assert graph.opset_import[0].version == 20 or any(o.version == 20 for o in graph.opset_import)
    assert "BatchNormalization" not in {n.op_type for n in graph.graph.node}, "BatchNorm must be folded into Conv"


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_fp16_graph_keeps_fp32_io_and_matches_within_fp16_tolerance(exporter, source_for, tmp_path):
    source = source_for("myresnet50")
    fp32 = export_onnx(source, tmp_path / "fp32", OnnxOptions(exporter="torchscript", img_size=IMG))
    result = export_onnx(source, tmp_path / "fp16", OnnxOptions(exporter=exporter, half=True, img_size=IMG))
    report = result.verifications[0]
    assert report.passed and report.tolerance == FP16
    assert report.max_rel_diff <= FP16.max_rel_diff and report.min_cosine >= FP16.min_cosine
    graph = onnx.load(str(tmp_path / "fp16" / "model.onnx"))
    weights = [i for i in graph.graph.initializer if len(i.dims) == 4]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # Half the bytes of the fp32 graph.
    assert result.artifacts[0].bytes < 0.6 * fp32.artifacts[0].bytes
    assert json.loads((tmp_path / "fp16" / "manifest.json").read_text())["export"]["half"] is True


def test_static_batch_graph_has_fixed_batch(source_for, tmp_path):
    source = source_for("myresnet18")
    result = export_onnx(source, tmp_path / "out", OnnxOptions(exporter="torchscript", dynamic_batch=False,
                                                               batch_size=4, img_size=IMG))
    assert result.manifest["inputs"][0]["shape"] == [4, 3, *IMG]
    assert result.verifications[0].batch_sizes == (4, 4)


@pytest.mark.parametrize("exporter,opset", [("dynamo", 18), ("dynamo", 23), ("torchscript", 13)])
def test_requested_opset_is_the_written_opset(exporter, opset, source_for, tmp_path):
    source = source_for("myresnet18")
    result = export_onnx(source, tmp_path / "out", OnnxOptions(exporter=exporter, opset=opset, img_size=IMG))
    assert result.manifest["opset"] == opset


@pytest.mark.parametrize("exporter,opset,needle", [
    ("dynamo", 17, "opsets 18-23, not 17 (use --exporter torchscript"),
    ("dynamo", 24, "opsets 18-23, not 24"),
    ("torchscript", 21, "opsets 9-20, not 21 (use --exporter dynamo"),
    ("torchscript", 8, "opsets 9-20, not 8"),
])
def test_opset_outside_the_exporters_range_is_refused_before_any_work(exporter, opset, needle, tmp_path):
    with pytest.raises(ExportOptionError, match=needle.replace("(", r"\(")):
        export_onnx("myresnet18", tmp_path / "out", OnnxOptions(exporter=exporter, opset=opset))
    assert tree(tmp_path) == []


def test_low_level_writer_returns_path_writes_atomically_and_keeps_model_mode(tmp_path):
    # Big enough (weights > 1 KiB) that external data really goes to the data file.
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.BatchNorm2d(64), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(64, 10))
    model.train()
    target = tmp_path / "sub" / "net.onnx"
    path = export_onnx_model(model, target, input_shape=(1, 3, 32, 32), exporter="torchscript")
    assert path == target and path.is_file()
    assert model.training, "the caller's model must be left in the mode it was in"
    assert leftover_staging(target.parent) == []
    model.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert np.abs(_ort_logits(path, x) - model(x).numpy()).max() < 1e-5
    # Re-export with external data replaces the file and adds the data file; back to single file removes it.
    export_onnx_model(model, target, input_shape=(2, 3, 32, 32), exporter="dynamo", single_file=False)
    assert (target.parent / "net.onnx.data").is_file()
    export_onnx_model(model, target, input_shape=(2, 3, 32, 32), exporter="dynamo", single_file=True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["net.onnx"]


def test_low_level_writer_rejects_bad_shapes(tmp_path):
    model = torch.nn.Conv2d(3, 4, 3)
    with pytest.raises(ExportOptionError, match="below the 32 px"):
        export_onnx_model(model, tmp_path / "m.onnx", input_shape=(1, 3, 16, 16))
    with pytest.raises(ExportOptionError, match="batch, channels, height, width"):
        export_onnx_model(model, tmp_path / "m.onnx", input_shape=(3, 64, 64))  # type: ignore[arg-type]
    assert tree(tmp_path) == []


def test_manifest_records_weights_preprocessing_tolerances_and_versions(source_for, tmp_path):
    source = source_for("myresnet50")
    export_onnx(source, tmp_path / "out", OnnxOptions(exporter="torchscript", img_size=IMG))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["model"]["variant"] == "myresnet50"
    assert manifest["weights"]["state_dict_sha256"] == source.state_dict_sha256
    assert manifest["preprocessing"]["input_size"] == [3, *IMG]
    assert manifest["preprocessing"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert manifest["verification"][0]["passed"] is True
    assert manifest["verification"][0]["tolerance"]["max_rel_diff"] == FP32.max_rel_diff
    assert manifest["verification"][0]["tolerance"]["measured"]  # each threshold says where its value comes from
    assert {"torch", "onnx", "onnxruntime", "python"} <= set(manifest["versions"])
    hashes = {f["name"]: f["sha256"] for f in manifest["files"]}
    from resnet_hub.weights.io import sha256_of_file

    assert hashes["model.onnx"] == sha256_of_file(tmp_path / "out" / "model.onnx")


def test_weights_file_and_its_recorded_preprocessing_are_used(source_for, tmp_path):
    from resnet_hub.model.configs import KERAS_TF
    from resnet_hub.weights.io import save_weights
    from dataclasses import asdict

    source = source_for("myresnet18", seed=3)
    weights = tmp_path / "w.safetensors"
    sha = save_weights(source.model, weights, "myresnet18", {"preprocessing": json.dumps(asdict(KERAS_TF))})
    from resnet_hub.export.onnx import export_onnx as run

    result = run("myresnet18", tmp_path / "out", OnnxOptions(exporter="torchscript", img_size=IMG), weights=weights)
    manifest = result.manifest
    assert manifest["weights"]["file_sha256"] == sha
    assert manifest["weights"]["state_dict_sha256"] == source.state_dict_sha256
    assert manifest["preprocessing"]["style"] == "tf"
    assert manifest["preprocessing"]["source"] == "weights file metadata"
    assert result.verifications[0].checks[0].reference_max_abs > 1.0  # the trained-looking weights were loaded
