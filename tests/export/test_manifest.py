"""One validation on both sides of manifest.json: what an exporter writes is what every reader accepts."""

from __future__ import annotations

import json

import pytest
from export_helpers import minimal_manifest, tree

from resnet_hub.export.manifest import Manifest, ManifestError, read_manifest, write_manifest


def test_a_written_manifest_reads_back_as_the_same_typed_record(tmp_path):
    values = minimal_manifest("onnx", {"model.onnx": b"graph"})
    path = write_manifest(tmp_path / "manifest.json", values)
    read = read_manifest(path)
    assert read == Manifest.from_dict(values)
    assert read.to_dict() == values and json.loads(path.read_text()) == values
    assert read.files[0].name == "model.onnx" and read.verification[0].batch_sizes == (1,)


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.pop("files"), "files"),
    (lambda m: m["model"].update(label_names=["a", "b"]), "model.label_names has 2 names for 10 classes"),
    (lambda m: m["preprocessing"].update(std=[0.25, 0.0, 0.25]), "std"),
    (lambda m: m.update(verified="yes"), "verified is not true or false"),
])
def test_an_exporter_cannot_write_what_a_reader_would_refuse(tmp_path, edit, problem):
    values = minimal_manifest("onnx", {"model.onnx": b"graph"})
    edit(values)
    with pytest.raises(ManifestError, match="the manifest about to be written to") as info:
        write_manifest(tmp_path / "manifest.json", values)
    assert any(problem in line for line in info.value.problems), info.value.problems
    assert tree(tmp_path) == []  # no manifest, no temporary file
