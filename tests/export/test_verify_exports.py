"""``resnet-hub verify DIR`` on real exports of myresnet18 (64 px): intact, tampered, deleted, lying and
manifest-less directories, and a TensorRT entry on a machine without TensorRT. Verify must never modify."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from export_helpers import IMG, make_logits_meaningful
from helpers.cli import run_cli
from helpers.models import randomize_batchnorm

from resnet_hub.export import export
from resnet_hub.export.audit import AuditError, audit_export
from resnet_hub.export.onnx import OnnxOptions
from resnet_hub.export.source import load_model_source
from resnet_hub.export.triton import TritonOptions
from resnet_hub.weights.io import save_weights

FAST = OnnxOptions(img_size=IMG, exporter="torchscript", single_file=False)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """One ONNX export (external data) and one Triton repository, from a weights file with meaningful logits."""
    root = tmp_path_factory.mktemp("exports")
    source = load_model_source("myresnet18")
    make_logits_meaningful(source.model, randomize_batchnorm)
    weights = root / "myresnet18.safetensors"
    save_weights(source.model, weights, "myresnet18")
    export("myresnet18", "onnx", root / "onnx", weights=weights, onnx=FAST)
    export("myresnet18", "triton", root / "repo", weights=weights,
           onnx=OnnxOptions(img_size=IMG, exporter="torchscript"),
           triton=TritonOptions(max_batch_size=4))
    return dict(onnx=root / "onnx", repo=root / "repo", weights=weights)


@pytest.fixture
def copy_of(exports, tmp_path):
    def make(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(exports[name], target)
        return target

    make.weights = exports["weights"]
    return make


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` with its size, mtime and content hash: 'verify modified nothing' evidence."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def verify_cli(directory: Path, *args: str):
    before = snapshot(directory.parent)
    proc = run_cli("verify", str(directory), *args, cwd=directory.parent)
    assert snapshot(directory.parent) == before, "verify modified files"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_intact_onnx_export_verifies_and_parity_is_re_run(exports):
    proc = verify_cli(exports["onnx"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for needle in ("model.onnx.data", "ok", "passed", "re-run here (onnx.checker full_check passed)",
                   "every file matches its manifest"):
        assert needle in proc.stdout, needle


def test_a_tampered_byte_fails_with_the_file_named(copy_of):
    out = copy_of("onnx")
    data = bytearray((out / "model.onnx.data").read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / "model.onnx.data").write_bytes(bytes(data))
    proc = verify_cli(out)
    assert proc.returncode == 1
    assert f"{out / 'model.onnx.data'}: modified (sha256 " in proc.stderr, proc.stderr
    assert "on disk, the manifest records" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_deleted_file_and_a_missing_manifest_fail(copy_of):
    out = copy_of("onnx")
    (out / "model.onnx.data").unlink()
    result = audit_export(out)
    assert not result.ok
    assert [(f.name, f.status) for f in result.exports[0].files if not f.ok] == [("model.onnx.data", "missing")]
    (out / "manifest.json").unlink()
    proc = verify_cli(out)
    assert proc.returncode == 1 and "no manifest.json here or in its model directories" in proc.stderr, proc.stderr


def test_a_manifest_that_lies_about_a_file_fails(copy_of):
    out = copy_of("onnx")
    manifest = json.loads((out / "manifest.json").read_text())
    entry = next(e for e in manifest["files"] if e["name"] == "model.onnx")
    entry["sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = audit_export(out)
    assert not result.ok
    (bad,) = [f for f in result.exports[0].files if not f.ok]
    assert bad.name == "model.onnx" and bad.status == "modified" and "manifest records 000000000000" in bad.detail
    assert all(r.status == "not re-run" for r in result.exports[0].parity)


def test_a_manifest_that_lies_about_parity_fails_on_re_run(copy_of, exports):
    """The files are intact but the weights are not the ones exported: parity on other weights must fail."""
    out = copy_of("onnx")
    other = out.parent / "other.safetensors"
    source = load_model_source("myresnet18")
    make_logits_meaningful(source.model, randomize_batchnorm, seed=7)
    save_weights(source.model, other, "myresnet18")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["weights"]["state_dict_sha256"] = None  # the lie: no hash to catch the swap
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = audit_export(out, weights=other)
    (run,) = result.exports[0].parity
    assert run.status == "failed" and "max |diff|" in run.detail and not result.ok


def test_random_init_export_fails_unless_hashes_only_and_says_why_parity_was_not_re_run(tmp_path):
    out = tmp_path / "onnx"
    export("myresnet18", "onnx", out, onnx=OnnxOptions(img_size=IMG, exporter="torchscript"))
    result = audit_export(out)
    (run,) = result.exports[0].parity
    assert run.status == "not re-run" and "random-init weights" in run.detail
    assert not result.ok and any("random-init weights" in line for line in result.failures())
    assert audit_export(out, hashes_only=True).ok


def test_triton_repository_verifies_every_model_directory(exports, copy_of):
    proc = verify_cli(exports["repo"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "myresnet18_onnx" in proc.stdout and "passed" in proc.stdout
    repo = copy_of("repo")
    (repo / "myresnet18_onnx" / "1" / "model.onnx").write_bytes(b"truncated")
    result = audit_export(repo)
    assert not result.ok and any("1/model.onnx: modified" in line for line in result.failures())


def test_tensorrt_parity_is_not_re_run_without_tensorrt_and_says_why(copy_of):
    """A TensorRT export directory (as a GPU machine writes it) checked where TensorRT is missing: the files and
    ONNX parity are checked; the engine's parity is reported as not re-run with the reason, which fails verify
    unless --hashes-only was asked for."""
    pytest.importorskip("onnxruntime")
    import dataclasses
    import importlib.util

    from resnet_hub.export.verify import FP16

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is importable here: the GPU tests cover engines")
    out = copy_of("onnx")
    engine, record = b"engine bytes", json.dumps({"precision": "fp16"}).encode()
    (out / "model.plan").write_bytes(engine)
    (out / "model.plan.json").write_bytes(record)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format"], manifest["precision"] = "tensorrt", "fp16"
    manifest["tensorrt"] = dict(engine_record=dict(precision="fp16", profile=[1, 2, 4]))
    for name, data in (("model.plan", engine), ("model.plan.json", record)):
        manifest["files"].append(dict(name=name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
    engine_check = dict(manifest["verification"][0], artifact="model.plan", runtime="TensorRT 10.16.1.11 (NVIDIA H100)",
                        tolerance=dataclasses.asdict(FP16))
    manifest["verification"].append(engine_check)
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = audit_export(out, weights=copy_of.weights)
    onnx_run, engine_run = result.exports[0].parity
    assert onnx_run.status == "passed", onnx_run
    assert engine_run.status == "not re-run" and "'tensorrt' package, which is not installed" in engine_run.detail
    assert not result.ok and result.exports[0].problems == ()
    assert audit_export(out, hashes_only=True).ok


def test_not_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(AuditError, match="is not a directory"):
        audit_export(tmp_path / "nowhere")
    proc = run_cli("verify", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert proc.returncode == 1 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr
