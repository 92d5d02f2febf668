"""Issue 11, library side: each test builds the bad input a hostile user would hand the Python API and checks
the typed error (or the corrected behaviour) with real files and the real libraries."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
import torch

import resnet_hub
from resnet_hub.weights.converters.dispatch import convert_checkpoint
from resnet_hub.errors import (
    ConversionError,
    CorruptWeightsError,
    IncompatibleWeightsError,
    InputShapeError,
    ModelArgumentError,
    UnknownTagError,
    UnsafeCheckpointError,
    WeightsError,
)
from resnet_hub.tasks.publish import publish


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return resnet_hub.create_model("myresnet18", num_classes=10).eval()


def _int64_copy(state_dict):
    return {k: (v * 100).to(torch.int64) if v.is_floating_point() else v for k, v in state_dict.items()}


@pytest.fixture
def int64_weights(tmp_path, model) -> Path:
    """A myresnet18 state dict with every float tensor cast to int64, saved as a normal weights file."""
    path = tmp_path / "int64.safetensors"
    resnet_hub.save_weights(_int64_copy(model.state_dict()), path, architecture="myresnet18")
    return path


@pytest.fixture
def nan_weights(tmp_path, model) -> Path:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["layer2.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    state["fc.bias"][3] = float("inf")
    path = tmp_path / "nan.safetensors"
    resnet_hub.save_weights(state, path, architecture="myresnet18")
    return path


# --- item 1: non-float and non-finite weights ------------------------------------------------------------

def test_integer_weights_are_refused_by_create_model_and_the_model_is_not_built(int64_weights):
    with pytest.raises(IncompatibleWeightsError, match="wrong type") as info:
        resnet_hub.create_model("myresnet18", num_classes=10, weights=int64_weights)
    assert "int64 (expected float32)" in str(info.value)


def test_nan_and_inf_weights_are_refused_and_named(nan_weights, model):
    target = resnet_hub.create_model("myresnet18", num_classes=10)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CorruptWeightsError, match="NaN or infinite") as info:
        resnet_hub.load_weights_into(target, nan_weights)
    assert "layer2.0.conv1.weight (1 of" in str(info.value) and "fc.bias (1 of 10" in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # untouched


def test_half_precision_weights_still_load_and_counters_stay_integer(tmp_path, model):
    path = tmp_path / "half.safetensors"
    resnet_hub.save_weights({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
                            path, architecture="myresnet18")
    loaded = resnet_hub.create_model("myresnet18", num_classes=10, weights=path)
    assert loaded.conv1.weight.dtype == torch.float32
    assert torch.allclose(loaded.conv1.weight, model.conv1.weight, atol=1e-2)
    floats = {k: v.float() if v.dtype == torch.int64 else v for k, v in model.state_dict().items()}
    with pytest.raises(IncompatibleWeightsError, match=r"num_batches_tracked: float32 \(expected int64\)"):
        resnet_hub.load_weights_into(resnet_hub.create_model("myresnet18", num_classes=10), _save(tmp_path, floats))


def _save(tmp_path, state) -> Path:
    path = tmp_path / "w.safetensors"
    resnet_hub.save_weights(state, path, architecture="myresnet18", overwrite=True)
    return path


def test_convert_from_timm_refuses_integer_tensors_and_writes_nothing(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = tmp_path / "timm-r18-int.safetensors"
    save_file(_int64_copy(timm.create_model("resnet18").state_dict()), str(source))
    out = tmp_path / "out.safetensors"
    with pytest.raises(IncompatibleWeightsError, match="wrong type"):
        convert_checkpoint(source, "timm", "myresnet18", out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_publish_dry_run_refuses_integer_weights(int64_weights, tmp_path):
    folder = tmp_path / "hub-folder"
    with pytest.raises(IncompatibleWeightsError, match="wrong type"):
        publish("myresnet18", int64_weights, "me/r18", dry_run_dir=folder)
    assert not folder.exists() or not any(folder.iterdir())


def test_export_refuses_integer_weights_before_writing(tmp_path):
    from resnet_hub.export import export

    weights = tmp_path / "int64-1000.safetensors"  # export builds the default 1000-class head
    resnet_hub.save_weights(_int64_copy(resnet_hub.create_model("myresnet18").state_dict()), weights,
                            architecture="myresnet18")
    out = tmp_path / "onnx"
    with pytest.raises(IncompatibleWeightsError, match="wrong type"):
        export("myresnet18", "onnx", out, weights=weights)
    assert not out.exists()


# --- item 15: files follow the umask --------------------------------------------------------------------

@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o027, 0o640)])
def test_save_convert_and_publish_files_get_the_umask_mode_like_exports(umask, mask, mode, tmp_path, model):
    from resnet_hub.export.files import StagedFiles

    umask(mask)
    weights = tmp_path / "w.safetensors"
    resnet_hub.save_weights(model, weights, architecture="myresnet18")
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    converted = convert_checkpoint(tmp_path / "r18.pth", "torchvision", "myresnet18", tmp_path / "c.safetensors").output
    folder = publish("myresnet18", weights, "me/r18", dry_run_dir=tmp_path / "hub").folder.path
    with StagedFiles(tmp_path / "export", ["model.onnx"]) as staging:
        (staging / "model.onnx").write_bytes(b"x")
    written = [weights, converted, *(folder / name for name in ("model.safetensors", "config.json", "README.md")),
               tmp_path / "export" / "model.onnx"]
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: oct(mode) for p in written}


# --- item 16: converted files are byte-reproducible -----------------------------------------------------

def test_convert_twice_gives_the_same_sha256(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    digests = set()
    for i in range(3):  # the safetensors writer's metadata order is random per call: three runs would differ
        report = convert_checkpoint(tmp_path / "r18.pth", "torchvision", "myresnet18", tmp_path / f"o{i}.safetensors")
        digests.add(hashlib.sha256(report.output.read_bytes()).hexdigest())
        assert report.sha256 in digests
    assert len(digests) == 1
    metadata = resnet_hub.weights.io.read_metadata(tmp_path / "o0.safetensors")
    assert metadata["architecture"] == "myresnet18" and "preprocessing" in metadata  # still a valid file


# --- item 17: weights paths that are not files ----------------------------------------------------------

def test_weights_path_messages_say_what_the_path_is(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    cases = {folder: f"is a folder, not a weights file: pass the .safetensors file inside it (e.g. {folder}/model",
             fifo: "is a named pipe (FIFO), not a regular file",
             Path("/dev/zero"): "is a character device, not a regular file",
             tmp_path / "missing.safetensors": "Weights file not found"}
    for path, needle in cases.items():
        with pytest.raises(WeightsError) as info:
            resnet_hub.create_model("myresnet18", weights=path)
        assert needle in str(info.value), (path, str(info.value))


def test_convert_source_fifo_and_device_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "r18.pth"
    os.mkfifo(fifo)  # torch.load would block forever waiting for a writer
    for source, needle in ((fifo, "named pipe"), (Path("/dev/zero"), "character device")):
        with pytest.raises(ConversionError, match=needle):
            convert_checkpoint(source, "torchvision", "myresnet18", tmp_path / "o.safetensors")


# --- item 18: the pickle refusal gives our advice only --------------------------------------------------

def test_pickle_refusal_does_not_repeat_torchs_weights_only_false_advice(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"conv1.weight": torch.zeros(1), "x": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError) as info:
        convert_checkpoint(tmp_path / "evil.pth", "torchvision", "myresnet18", tmp_path / "o.safetensors")
    message = str(info.value)
    assert "will likely succeed" not in message and "Re-running" not in message
    assert "resnet-hub convert" in message and "system" in message  # names what was refused
    assert not marker.exists()


# --- item 20: Python API arguments ----------------------------------------------------------------------

def test_create_model_without_a_name_is_a_typed_error():
    for name in (None, "", 50):
        with pytest.raises(ModelArgumentError, match="A model name is a string"):
            resnet_hub.create_model(name)


@pytest.mark.parametrize("in_chans", [0, -1, 1.5])
def test_in_chans_below_one_is_refused(in_chans):
    import timm

    for create in (resnet_hub.create_model, timm.create_model):
        with pytest.raises(ModelArgumentError, match="in_chans must be a whole number >= 1"):
            create("myresnet18", in_chans=in_chans)


def test_out_indices_out_of_range_name_the_valid_ones():
    with pytest.raises(ModelArgumentError, match=r"valid out_indices are 0\.\.4 or -5\.\.-1"):
        resnet_hub.create_model("myresnet18", features_only=True, out_indices=(5,))
    with pytest.raises(ModelArgumentError, match="out of range"):
        resnet_hub.create_model("myresnetv2_50", features_only=True, out_indices=(0, -6))
    ok = resnet_hub.create_model("myresnet18", features_only=True, out_indices=(-1, 0)).eval()
    assert [f.shape[1] for f in ok(torch.zeros(1, 3, 32, 32))] == [64, 512]


@pytest.mark.parametrize("dtype,needle", [
    (torch.float16, "float32 weights but got float16 input"),
    (torch.float64, "float32 weights but got float64 input"),
    (torch.uint8, "converted to floating point and normalised"),
])
def test_input_dtype_mismatch_says_what_to_do(model, dtype, needle):
    with pytest.raises(InputShapeError, match=needle):
        model(torch.zeros(1, 3, 32, 32, dtype=dtype))


def test_mixed_dtypes_under_autocast_still_run(model):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.zeros(1, 3, 32, 32, dtype=torch.bfloat16)).shape == (1, 10)


def test_unknown_tags_are_typed_errors_that_list_the_known_tags():
    with pytest.raises(UnknownTagError, match=r"no pretrained tag 'badtag' \(known: a1_in1k, tv_in1k\)"):
        resnet_hub.create_model("myresnet18.badtag")
    with pytest.raises(UnknownTagError, match="has no published pretrained weights"):
        resnet_hub.get_variant("myresnet50_v1.tv_in1k")
    assert isinstance(UnknownTagError("x"), KeyError)  # old `except KeyError` handlers still work
