"""Outputs are staged and moved into place: no partial files, no silent overwrite."""

from __future__ import annotations

import os
import stat

import pytest

from resnet_hub.export.errors import OutputExistsError
from resnet_hub.export.files import StagedFiles, StagedTree, leftover_staging


def test_new_directory_appears_whole_and_readable(tmp_path):
    target = tmp_path / "out"
    with StagedFiles(target, ["a.onnx", "manifest.json"]) as stage:
        (stage / "a.onnx").write_text("graph")
        assert not target.exists(), "nothing is visible before the commit"
        (stage / "manifest.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["a.onnx", "manifest.json"]
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode & 0o055 == 0o055 & ~_umask(), "a directory made by mkdtemp must not stay private"
    assert leftover_staging(tmp_path) == []


def test_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with StagedFiles(target, ["a.onnx"]) as stage:
            (stage / "a.onnx").write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_artifact_is_refused_without_force_and_kept(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.onnx").write_text("old")
    (target / "notes.txt").write_text("user file")
    with pytest.raises(OutputExistsError, match="--force"):
        with StagedFiles(target, ["a.onnx", "a.onnx.data"]):
            pytest.fail("must refuse before doing any work")
    assert (target / "a.onnx").read_text() == "old"
    assert leftover_staging(target) == []


def test_force_replaces_and_removes_stale_artifacts_but_not_user_files(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.onnx").write_text("old")
    (target / "a.onnx.data").write_text("old weights")
    (target / "notes.txt").write_text("user file")
    with StagedFiles(target, ["a.onnx", "a.onnx.data"], force=True) as stage:
        (stage / "a.onnx").write_text("new")
    assert (target / "a.onnx").read_text() == "new"
    assert not (target / "a.onnx.data").exists(), "a stale data file must not sit beside a single-file graph"
    assert (target / "notes.txt").read_text() == "user file"


def test_undeclared_artifact_is_a_bug_and_is_not_committed(tmp_path):
    with pytest.raises(RuntimeError, match="undeclared"):
        with StagedFiles(tmp_path / "out", ["a.onnx"]) as stage:
            (stage / "b.onnx").write_text("x")
    assert leftover_staging(tmp_path) == [] and not (tmp_path / "out").exists()


def test_tree_is_swapped_whole(tmp_path):
    target = tmp_path / "repo" / "model"
    with StagedTree(target) as stage:
        (stage / "1").mkdir()
        (stage / "1" / "model.onnx").write_text("v1")
    with pytest.raises(OutputExistsError):
        with StagedTree(target):
            pass
    with StagedTree(target, force=True) as stage:
        (stage / "config.pbtxt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["config.pbtxt"]
    assert leftover_staging(target.parent) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
