"""The real console script in a subprocess: outputs, summary, and errors that leave nothing behind."""

from __future__ import annotations

import json

import pytest
from export_helpers import tree
from helpers.cli import run_cli

from resnet_hub.weights.io import sha256_of_file

FAST = ("--img-size", "64", "64", "--exporter", "torchscript")


def test_onnx_export_writes_verified_model_and_prints_summary(tmp_path):
    out = tmp_path / "onnx"
    proc = run_cli("export", "myresnet18", "--format", "onnx", "--output", str(out), *FAST, "--external-data")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx", "model.onnx.data"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["verified"] is True and manifest["export"]["exporter"] == "torchscript"
    summary = proc.stdout
    for needle in (str(out / "model.onnx"), "model.onnx.data", "MiB", "verification against PyTorch",
                   "ONNX Runtime (CPU)", "1, 3", "PASS", "fp32: <= 0.0001", "ort.InferenceSession"):
        assert needle in summary, needle
    assert "comparing ONNX Runtime with PyTorch" in proc.stderr  # progress goes to stderr


def test_existing_output_is_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "onnx"
    assert run_cli("export", "myresnet18", "--output", str(out), *FAST).returncode == 0
    before = sha256_of_file(out / "model.onnx")
    proc = run_cli("export", "myresnet18", "--output", str(out), *FAST, "--opset", "18")
    assert proc.returncode == 1
    assert "already exist" in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sha256_of_file(out / "model.onnx") == before
    proc = run_cli("export", "myresnet18", "--output", str(out), *FAST, "--opset", "18", "--force")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["opset"] == 18
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx"]


@pytest.mark.parametrize("args,needle", [
    (("export", "myresnet5O", "--output", "{out}"), "Unknown model 'myresnet5O'. Did you mean: myresnet50"),
    (("export", "myresnet18", "--output", "{out}", "--opset", "17"), "opsets 18-23, not 17"),
    (("export", "myresnet18", "--output", "{out}", "--format", "tensorrt", "--static-batch", "--batch-size", "4",
      "--max-batch", "8"), "--max-batch 8 does not fit a static-batch ONNX graph of batch 4"),
    (("export", "myresnet18", "--output", "{out}", "--weights", "{tmp}/missing.safetensors"), "not found"),
])
def test_bad_input_gives_one_clear_line_and_no_files(args, needle, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(*(a.format(out=out, tmp=tmp_path) for a in args))
    assert proc.returncode == 1
    assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert tree(tmp_path) == []


def test_triton_export_via_cli(tmp_path):
    repo = tmp_path / "repo"
    proc = run_cli("export", "myresnet18", "--format", "triton", "--output", str(repo), *FAST,
                   "--max-batch", "8", "--preferred-batch", "4", "--preferred-batch", "8")
    assert proc.returncode == 0, proc.stderr
    from resnet_hub.export.triton import read_config

    config = read_config(repo / "myresnet18_onnx" / "config.pbtxt")
    assert config.max_batch_size == 8 and list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert "tritonserver --model-repository" in proc.stdout and "config.pbtxt" in proc.stdout
