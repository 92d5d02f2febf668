"""Safetensors I/O: round trips, metadata, and clear errors that leave the model untouched."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

import resnet_hub
from resnet_hub.errors import CorruptWeightsError, IncompatibleWeightsError, WeightsError
from resnet_hub.weights.io import load_weights, read_metadata, save_weights, sha256_of_file


@pytest.fixture(scope="module")
def model():
    return resnet_hub.create_model("myresnet18", num_classes=10).eval()


@pytest.fixture
def weights_file(tmp_path, model):
    path = tmp_path / "myresnet18.safetensors"
    save_weights(model, path, architecture="myresnet18", metadata={"dataset": "unit-test", "classes": [1, 2]})
    return path


def test_round_trip_restores_identical_logits_and_records_metadata(weights_file, model):
    restored = resnet_hub.create_model("myresnet18", num_classes=10, weights=weights_file).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(restored(x), model(x))
    metadata = read_metadata(weights_file)
    assert metadata["architecture"] == "myresnet18"
    assert metadata["resnet_hub_version"] == resnet_hub.__version__
    assert metadata["dataset"] == "unit-test" and json.loads(metadata["classes"]) == [1, 2]


def test_save_refuses_to_overwrite_and_leaves_no_temp_files(weights_file, model):
    before = weights_file.read_bytes()
    with pytest.raises(FileExistsError, match="--force"):
        save_weights(model, weights_file, architecture="myresnet18")
    assert weights_file.read_bytes() == before
    assert sorted(p.name for p in weights_file.parent.iterdir()) == [weights_file.name]
    save_weights(model, weights_file, architecture="myresnet18", overwrite=True)


def test_checksum_mismatch_is_reported(weights_file):
    good = sha256_of_file(weights_file)
    load_weights(weights_file, expected_sha256=good)
    with pytest.raises(CorruptWeightsError, match="integrity check"):
        load_weights(weights_file, expected_sha256="0" * 64)


def test_truncated_file_gives_a_clear_error(weights_file):
    data = weights_file.read_bytes()
    weights_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptWeightsError, match="truncated"):
        load_weights(weights_file)


def test_garbage_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(CorruptWeightsError, match="not a readable safetensors file"):
        resnet_hub.create_model("myresnet18", weights=path)


def test_pickle_checkpoints_are_refused_without_being_opened(tmp_path):
    path = tmp_path / "model.pth"
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(WeightsError, match="pickle"):
        resnet_hub.create_model("myresnet18", weights=path)
    assert not marker.exists()


def test_missing_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "nope.safetensors")


def test_weights_of_another_architecture_are_refused_before_loading(tmp_path):
    path = tmp_path / "r34.safetensors"
    save_weights(resnet_hub.create_model("myresnet34"), path, architecture="myresnet34")
    with pytest.raises(IncompatibleWeightsError, match="'myresnet34', not 'myresnet18'"):
        resnet_hub.create_model("myresnet18", weights=path)


def test_shape_mismatch_lists_the_offending_keys_and_leaves_the_model_untouched(weights_file):
    model = resnet_hub.create_model("myresnet18", num_classes=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(IncompatibleWeightsError, match=r"fc.weight: checkpoint \(10, 512\) vs model \(5, 512\)"):
        resnet_hub.load_weights_into(model, weights_file)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_and_unexpected_keys_are_listed(tmp_path, model):
    state_dict = dict(model.state_dict())
    state_dict.pop("layer1.0.conv1.weight")
    state_dict["extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.safetensors"
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path), metadata={"architecture": "myresnet18"})
    with pytest.raises(IncompatibleWeightsError,
                       match="1 missing keys: layer1.0.conv1.weight.*1 unexpected keys: extra"):
        resnet_hub.create_model("myresnet18", num_classes=10, weights=path)


def test_checkpoints_without_batchnorm_counters_still_load(tmp_path, model):
    state_dict = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "no-counters.safetensors"
    save_weights(state_dict, path, architecture="myresnet18")
    resnet_hub.create_model("myresnet18", num_classes=10, weights=path)
