"""``resnet-hub verify`` against a hostile or careless edit of an export (issue #17, items 1-7).

Every case builds its own bad input from a real export of the digits model (ONNX, and a Triton repository) and
runs the real CLI in a subprocess: it must exit non-zero with exactly one line on stderr, without a traceback,
within 30 s (the subprocess timeout). "Nothing is read outside DIR" is proved with a named pipe outside the
directory: opening it for reading blocks until a writer comes, so a verify that read it would hang past the
timeout; and with a canary file whose size and hash must never appear in the output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from helpers.cli import run_cli

from resnet_hub.export import export
from resnet_hub.export.audit import audit_export
from resnet_hub.export.onnx import OnnxOptions
from resnet_hub.export.triton import TritonOptions

DIGITS_IMG = (32, 32)
TIMEOUT = 30
CANARY = b"a file outside the export directory that verify must never read\n" * 7


@pytest.fixture(scope="module")
def exports(tmp_path_factory, digits_model) -> dict[str, Path]:
    """An ONNX export and a Triton repository of the digits model (which records its label names)."""
    root = tmp_path_factory.mktemp("adversarial")
    options = OnnxOptions(img_size=DIGITS_IMG, exporter="torchscript")
    export("myresnet18", "onnx", root / "onnx", weights=digits_model, onnx=options)
    export("myresnet18", "triton", root / "repo", weights=digits_model, onnx=options,
           triton=TritonOptions(max_batch_size=4))
    return dict(onnx=root / "onnx", repo=root / "repo", weights=digits_model)


@pytest.fixture
def outside(tmp_path) -> dict[str, Path]:
    """A named pipe and a canary file beside (not inside) the export directory."""
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)
    canary = tmp_path / "canary.bin"
    canary.write_bytes(CANARY)
    return dict(fifo=fifo, canary=canary)


@pytest.fixture
def copy_of(exports, tmp_path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        target = tmp_path / "work" / name
        shutil.copytree(exports[name], target)
        return target

    return make


def manifest_of(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def write_manifest(directory: Path, manifest) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest))


def entry_for(name: str, data: bytes) -> dict:
    return dict(name=name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def refused(directory: Path, *args: str, needle: str = "") -> str:
    """verify DIR must fail: exit 1, one line on stderr, no traceback, within the timeout; returns that line."""
    try:
        proc = run_cli("verify", str(directory), *args, cwd=directory.parent, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"verify {directory} ran past {TIMEOUT} s (a hang, or it opened the pipe outside DIR)")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("verify failed:"), proc.stderr
    assert needle in lines[0], lines[0]
    canary = hashlib.sha256(CANARY).hexdigest()[:12]
    assert canary not in proc.stdout + proc.stderr and str(len(CANARY)) not in proc.stderr
    return lines[0]


def test_an_intact_export_verifies_with_parity_re_run(exports):
    proc = run_cli("verify", str(exports["onnx"]), cwd=exports["onnx"].parent, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "parity was re-run" in proc.stdout and "passed" in proc.stdout
    assert "not verified" in proc.stdout and "accuracy" in proc.stdout  # says what it cannot check


# 1. Never leave DIR.

def test_a_file_entry_outside_the_directory_is_refused_unread(copy_of, outside):
    out = copy_of("onnx")
    manifest = manifest_of(out)
    manifest["files"].append(dict(name="../../secret.fifo", bytes=0, sha256="0" * 64))
    write_manifest(out, manifest)
    refused(out, needle="leaves the export directory")


def test_an_absolute_path_with_the_true_size_and_hash_is_refused(copy_of, outside):
    out = copy_of("onnx")
    manifest = manifest_of(out)
    manifest["files"].append(dict(entry_for("x", CANARY), name=str(outside["canary"])))
    write_manifest(out, manifest)
    refused(out, needle="absolute path")


def test_a_symlinked_model_file_is_refused(copy_of, tmp_path):
    out = copy_of("onnx")
    real = tmp_path / "elsewhere.onnx"
    shutil.move(out / "model.onnx", real)
    (out / "model.onnx").symlink_to(real)  # same bytes, same hash: only the link gives it away
    refused(out, needle="symbolic link")


def test_a_symlinked_folder_to_a_pipe_outside_is_refused_unread(copy_of, outside):
    out = copy_of("onnx")
    (out / "sub").symlink_to(outside["fifo"].parent)
    manifest = manifest_of(out)
    manifest["files"].append(dict(name="sub/secret.fifo", bytes=0, sha256="0" * 64))
    write_manifest(out, manifest)
    refused(out, needle="symbolic link")


def test_a_symlinked_manifest_is_refused(copy_of, tmp_path):
    out = copy_of("onnx")
    shutil.move(out / "manifest.json", tmp_path / "manifest.json")
    (out / "manifest.json").symlink_to(tmp_path / "manifest.json")
    refused(out, needle="symbolic link")


# 2. The code decides what is checked.

@pytest.mark.parametrize("edit,needle", [
    (lambda m: m.update(verification=[]), "verification is not a non-empty list"),
    (lambda m: m.pop("verification"), "verification is not a non-empty list"),
    (lambda m: m["verification"][0]["tolerance"].update(max_rel_diff=1e9, min_cosine=-1.0, min_top1_agreement=0.0),
     "tolerance"),
    (lambda m: m["verification"][0]["checks"][0].update(batch_size=100000), "batch size 100000"),
    (lambda m: m.update(files=m["files"] * 1000), "more than the 64"),
    (lambda m: m.update(files=m["files"] + m["files"][:1]), "listed twice"),
    (lambda m: m["files"][0].update(bytes=10 ** 15), "is not a size"),
    (lambda m: m["verification"].append(dict(m["verification"][0], artifact="model.plan")), "model.plan"),
], ids=["empty-verification", "no-verification", "loosened-tolerance", "hostile-batch", "2000-files",
        "duplicate-file", "oversized-file", "extra-parity-run"])
def test_manifest_only_edits_to_what_is_checked_fail(copy_of, edit, needle):
    out = copy_of("onnx")
    manifest = manifest_of(out)
    edit(manifest)
    write_manifest(out, manifest)
    refused(out, needle=needle)


# 3. The manifest against the graph and the weights.

def test_swapped_label_names_fail(copy_of):
    out = copy_of("onnx")
    manifest = manifest_of(out)
    names = manifest["model"]["label_names"]
    names[3], names[5] = names[5], names[3]
    write_manifest(out, manifest)
    refused(out, needle="label names are not the weights'")


@pytest.mark.parametrize("edit,needle", [
    (lambda m: m.update(precision="int8"), "int8"),
    (lambda m: m["model"].update(num_classes=11, label_names=m["model"]["label_names"] + ["10"]), "11 classes"),
    (lambda m: m["preprocessing"].update(mean=[0.0, 0.0, 0.0]), "preprocessing mean"),
    (lambda m: m["preprocessing"].update(input_size=[3, 64, 64]), "per image"),
], ids=["precision", "num-classes", "mean", "input-size"])
def test_a_manifest_that_disagrees_with_its_graph_or_weights_fails(copy_of, edit, needle):
    out = copy_of("onnx")
    manifest = manifest_of(out)
    edit(manifest)
    write_manifest(out, manifest)
    refused(out, needle=needle)


# 4. Everything served is covered.

def test_an_unlisted_file_fails_unless_allowed(copy_of):
    out = copy_of("onnx")
    (out / "notes.onnx").write_bytes(b"not verified")
    refused(out, needle="notes.onnx")
    proc = run_cli("verify", str(out), "--allow-extra", cwd=out.parent, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_triton_repository_is_covered_config_labels_and_all(exports):
    model_dir = exports["repo"] / "myresnet18_onnx"
    config = (model_dir / "config.pbtxt").read_text()
    assert 'label_filename: "labels.txt"' in config
    assert (model_dir / "labels.txt").read_text().splitlines() == manifest_of(model_dir)["model"]["label_names"]
    listed = {e["name"] for e in manifest_of(model_dir)["files"]}
    assert {"config.pbtxt", "labels.txt", "README.md", "1/model.onnx"} <= listed
    assert audit_export(exports["repo"]).ok


def _rehash(model_dir: Path, name: str) -> None:
    """Update the manifest's entry for ``name`` to the file's new content: a manifest-consistent edit."""
    manifest = manifest_of(model_dir)
    data = (model_dir / name).read_bytes()
    entry = next(e for e in manifest["files"] if e["name"] == name)
    entry.update(entry_for(name, data))
    write_manifest(model_dir, manifest)


@pytest.mark.parametrize("case,needle", [
    ("extra-version", "2/model.onnx"),
    ("extra-model", "no manifest.json"),
    ("config-unhashed", "config.pbtxt: modified"),
    ("config-rehashed-filename", "default_model_filename"),
    ("config-rehashed-dims", "input"),
    ("labels-rehashed", "labels.txt differs"),
])
def test_triton_extras_and_consistent_edits_fail(copy_of, case, needle):
    repo = copy_of("repo")
    model_dir = repo / "myresnet18_onnx"
    config = model_dir / "config.pbtxt"
    if case == "extra-version":
        (model_dir / "2").mkdir()
        shutil.copy(model_dir / "1" / "model.onnx", model_dir / "2" / "model.onnx")
    elif case == "extra-model":
        shutil.copytree(model_dir / "1", repo / "other_onnx" / "1")
    elif case == "config-unhashed":
        config.write_text(config.read_text().replace("count: 1", "count: 8"))
    elif case == "config-rehashed-filename":
        config.write_text(config.read_text() + 'default_model_filename: "other.onnx"\n')
        _rehash(model_dir, "config.pbtxt")
    elif case == "config-rehashed-dims":
        config.write_text(config.read_text().replace(f"dims: [ 3, {DIGITS_IMG[0]}, {DIGITS_IMG[1]} ]",
                                                     "dims: [ 3, 64, 64 ]"))
        _rehash(model_dir, "config.pbtxt")
    elif case == "labels-rehashed":
        labels = (model_dir / "labels.txt").read_text().splitlines()
        labels[0], labels[1] = labels[1], labels[0]
        (model_dir / "labels.txt").write_text("\n".join(labels) + "\n")
        _rehash(model_dir, "labels.txt")
    refused(repo, needle=needle)


# 5. OK means parity was re-run.

def test_missing_weights_fail_unless_hashes_only(copy_of, exports, tmp_path):
    out = copy_of("onnx")
    manifest = manifest_of(out)
    assert Path(manifest["weights"]["path"]).is_absolute()  # recorded so verify works from any directory
    manifest["weights"].update(path=str(tmp_path / "gone.safetensors"), source="gone.safetensors")
    write_manifest(out, manifest)
    refused(out, needle="not on this machine")
    proc = run_cli("verify", str(out), "--hashes-only", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "parity with PyTorch" in proc.stdout  # named among what was not verified


def test_verify_finds_the_weights_from_another_working_directory(exports, tmp_path):
    proc = run_cli("verify", str(exports["onnx"]), cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# 6. Structurally broken manifests: one line each.

BROKEN = {
    "files-as-strings": lambda m: m.update(files=[e["name"] for e in m["files"]]),
    "model-string": lambda m: m.update(model="x"),
    "weights-null": lambda m: m.update(weights=None),
    "input-size-text": lambda m: m["preprocessing"].update(input_size="abc"),
    "verification-ints": lambda m: m.update(verification=[1]),
    "absolute-paths": lambda m: [e.update(name="/" + e["name"]) for e in m["files"]],
    "std-nan": lambda m: m["preprocessing"].update(std=[float("nan")] * 3),
    "list": lambda m: None,
    "not-json": lambda m: None,
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_structurally_broken_manifest_gives_one_line(copy_of, case):
    out = copy_of("onnx")
    manifest = manifest_of(out)
    BROKEN[case](manifest)
    if case == "list":
        manifest = [manifest]
    write_manifest(out, manifest)
    if case == "not-json":
        (out / "manifest.json").write_text("{ this is not json")
    refused(out, needle="manifest.json")


# 7. evaluate / predict --engine ray re-check the hashes first.

def test_evaluate_and_ray_workers_refuse_a_byte_flipped_export(copy_of):
    from resnet_hub.export.batch_model import ExportBatchModel
    from resnet_hub.export.directory import ExportDirectory, ExportDirectoryError, export_target

    out = copy_of("onnx")
    assert ExportDirectory.open(out).labels()[:3] == ["0", "1", "2"]
    data = bytearray((out / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / "model.onnx").write_bytes(bytes(data))
    for call in (lambda: export_target(out), lambda: ExportBatchModel(str(out)).describe(),
                 lambda: ExportBatchModel(str(out)).load(1)):
        with pytest.raises(ExportDirectoryError, match="model.onnx: sha256 .* the manifest records"):
            call()
    proc = run_cli("evaluate", str(out), "--data", "digits", "--limit", "8", cwd=out.parent, timeout=60)
    assert proc.returncode == 1 and "model.onnx: sha256" in proc.stderr and "Traceback" not in proc.stderr


def test_the_directory_reader_runs_the_export_like_onnx_runtime(exports):
    """ExportDirectory.logits is the graph run by ONNX Runtime on the normalised batch (the oracle: a session
    opened here by hand)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from resnet_hub.export.directory import ExportDirectory

    export_dir = ExportDirectory.open(exports["onnx"])
    x = torch.randn(3, *export_dir.manifest.input_size, generator=torch.Generator().manual_seed(0))
    session = ort.InferenceSession(str(exports["onnx"] / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(export_dir.logits(threads=1)(x), expected, rtol=1e-5, atol=1e-5)
    assert export_dir.data_config()["input_size"] == (3, *DIGITS_IMG) and export_dir.num_classes == 10

