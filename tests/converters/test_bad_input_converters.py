"""Hostile or broken inputs give a typed, readable error and never run code or leave partial output."""

from __future__ import annotations

import os
import pickle

import pytest
import timm
import torch
from safetensors.torch import save_file

from resnet_hub.weights.converters.dispatch import convert_checkpoint
from resnet_hub.errors import ConversionError, CorruptWeightsError, UnsafeCheckpointError


class _WritesMarker:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pth", ".bin"])
def test_pickle_with_code_is_refused_and_not_executed(tmp_path, suffix):
    marker = tmp_path / "pwned"
    payload = {"conv1.weight": torch.zeros(1), "evil": _WritesMarker(str(marker))}
    torch.save(payload, tmp_path / f"evil{suffix}")
    # The payload is real: plain pickle would run it (checked on a separate copy of the bytes).
    with pytest.raises(UnsafeCheckpointError, match="could run code"):
        convert_checkpoint(tmp_path / f"evil{suffix}", "torchvision", "myresnet18", tmp_path / "out.safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_the_pickle_payload_would_really_run(tmp_path):
    """Guards the test above: without weights_only the same object does create the marker."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_WritesMarker(str(marker))))
    assert marker.exists()


@pytest.mark.parametrize("fmt,suffix", [("timm", ".pth"), ("timm", ".safetensors"), ("keras", ".weights.h5")])
def test_truncated_checkpoints_give_a_clear_error(tmp_path, fmt, suffix):
    state_dict = timm.create_model("resnet18").state_dict()
    full = tmp_path / f"full{suffix}"
    if suffix == ".pth":
        torch.save(state_dict, full)
    elif suffix == ".safetensors":
        save_file(state_dict, full)
    else:
        h5py = pytest.importorskip("h5py")
        with h5py.File(full, "w") as handle:  # Keras 3 layout, one layer is enough to be cut off
            group = handle.create_group("layers/conv2d/vars")
            group.attrs["name"] = "conv1_conv"
            group.create_dataset("0", data=torch.randn(7, 7, 3, 64).numpy())
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptWeightsError, match="truncated"):
        convert_checkpoint(cut, fmt, "myresnet18" if fmt == "timm" else "myresnet50_v1", tmp_path / "o.safetensors")
    assert not (tmp_path / "o.safetensors").exists()


def test_existing_output_is_refused_without_force(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"keep me")
    with pytest.raises(ConversionError, match="--force"):
        convert_checkpoint(tmp_path / "r18.pth", "timm", "myresnet18", out)
    assert out.read_bytes() == b"keep me"
    convert_checkpoint(tmp_path / "r18.pth", "timm", "myresnet18", out, overwrite=True)
    assert out.read_bytes() != b"keep me"


def test_unknown_source_format_and_missing_file(tmp_path):
    with pytest.raises(ConversionError, match="choose one of torchvision, timm, keras, transformers"):
        convert_checkpoint(tmp_path / "x.pth", "caffe", "myresnet18", tmp_path / "o.safetensors")
    with pytest.raises(ConversionError, match="not found"):
        convert_checkpoint(tmp_path / "missing.pth", "timm", "myresnet18", tmp_path / "o.safetensors")
