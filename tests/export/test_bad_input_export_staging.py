"""Issue 11, export outputs: unwritable locations are one typed error, an interrupted Triton export leaves no
empty repository, and staging folders of killed processes are cleaned by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from process_helpers import interrupt_when, wait_for
from export_helpers import REPO_ROOT, tree
from helpers.cli import run_cli

from resnet_hub.errors import OutputPathError
from resnet_hub.export.files import STAGING_PREFIX, StagedFiles, StagedTree, leftover_staging, staging_prefix


def _wait_for(predicate, timeout: float = 120.0) -> None:
    wait_for(predicate, timeout)


def _export(*args: str) -> subprocess.Popen:
    env = dict(os.environ, COLUMNS="200", PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-m", "resnet_hub", "export", "myresnet18", "--img-size", "64", "64",
                             "--exporter", "torchscript", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# --- item 8: unwritable outputs ------------------------------------------------------------------------

@pytest.mark.parametrize("make", ["proc", "under_file"])
def test_staging_in_an_unwritable_place_is_a_typed_error(make, tmp_path):
    if make == "proc":
        target = Path("/proc/resnet-hub-export")
    else:
        (tmp_path / "a-file").write_text("x")
        target = tmp_path / "a-file" / "out"
    for staged in (StagedFiles(target, ["model.onnx"]), StagedTree(target / "model_onnx")):
        with pytest.raises(OutputPathError, match="Cannot write"):
            with staged:
                pass
    assert not target.exists()


def test_cli_export_into_proc_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("x")
    for output in ("/proc/resnet-hub-export", str(tmp_path / "a-file" / "out")):
        result = run_cli("export", "myresnet18", "--format", "onnx", "--output", output, "--img-size", "64", "64")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert [line for line in result.stderr.splitlines() if line.startswith("Error:")][0].startswith(
            f"Error: Cannot write {output}")


# --- item 14: interrupted and killed exports -------------------------------------------------------------

def test_sigint_during_a_triton_export_leaves_no_repository_folder(tmp_path):
    repository = tmp_path / "model_repository"
    process = _export("--format", "triton", "--output", str(repository))
    _, stderr = interrupt_when(process, lambda: bool(leftover_staging(repository)))
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert not repository.exists(), tree(repository)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_staging_folders_of_killed_exports_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    process = _export("--format", "onnx", "--output", str(out))
    try:
        _wait_for(lambda: bool(leftover_staging(out)) or process.poll() is not None)
        assert process.poll() is None, process.stderr.read()[-3000:]
        process.send_signal(signal.SIGKILL)  # no cleanup can run
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    stale = leftover_staging(out)
    assert len(stale) == 1 and stale[0].name.startswith(f"{STAGING_PREFIX}{process.pid}-")
    # A staging folder of a live process (this test's sleeper) must survive the cleaning.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = out / (staging_prefix().replace(f"-{os.getpid()}-", f"-{sleeper.pid}-") + "busy")
        live.mkdir()
        with StagedFiles(out, ["model.onnx"]) as staging:
            (staging / "model.onnx").write_bytes(b"new")
        assert leftover_staging(out) == [live]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(STAGING_PREFIX)) == ["keep.txt", "model.onnx"]


def test_failed_export_removes_the_folders_it_created_but_not_existing_ones(tmp_path):
    with pytest.raises(RuntimeError):
        with StagedTree(tmp_path / "new" / "repo" / "model_onnx"):
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "existing").mkdir()
    with pytest.raises(RuntimeError):
        with StagedTree(tmp_path / "existing" / "model_onnx"):
            raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["existing"] and not any((tmp_path / "existing").iterdir())
