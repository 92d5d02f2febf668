"""torchvision, timm and transformers checkpoints -> ours, checked against the real peer models."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from safetensors.torch import save_file

import resnet_hub
from converter_helpers import image_batch

from helpers.models import randomize_batchnorm
from resnet_hub.weights.converters.dispatch import convert_checkpoint
from resnet_hub.weights.converters.timm_resnetv2 import timm_resnetv2_to_ours
from resnet_hub.errors import IncompatibleWeightsError
from resnet_hub.weights.io import load_weights, load_weights_into, read_metadata, sha256_of_file


def _ours(path, name: str, **kwargs) -> torch.nn.Module:
    model = resnet_hub.create_model(name, **kwargs).eval()
    load_weights_into(model, path)
    return model


def test_torchvision_pth_converts_exactly(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    peer = torchvision.models.resnet18(num_classes=7).eval()
    randomize_batchnorm(peer)
    torch.save(peer.state_dict(), tmp_path / "tv.pth")
    report = convert_checkpoint(tmp_path / "tv.pth", "torchvision", "myresnet18", tmp_path / "out.safetensors")
    assert report.num_classes == 7
    assert report.sha256 == sha256_of_file(report.output)
    assert report.source_sha256 == sha256_of_file(tmp_path / "tv.pth")
    x = image_batch()
    with torch.no_grad():
        assert torch.equal(_ours(report.output, "myresnet18", num_classes=7)(x), peer(x))


def test_timm_resnet_safetensors_and_bin_convert_exactly(tmp_path):
    peer = timm.create_model("resnet18").eval()
    randomize_batchnorm(peer)
    save_file(peer.state_dict(), tmp_path / "timm.safetensors")
    torch.save(peer.state_dict(), tmp_path / "pytorch_model.bin")
    x = image_batch()
    for source in ("timm.safetensors", "pytorch_model.bin"):
        report = convert_checkpoint(tmp_path / source, "timm", "myresnet18", tmp_path / f"{source}.safetensors")
        with torch.no_grad():
            assert torch.equal(_ours(report.output, "myresnet18")(x), peer(x))


def test_timm_resnetv2_is_renamed_and_matches_exactly(tmp_path):
    peer = timm.create_model("resnetv2_50").eval()
    randomize_batchnorm(peer)
    torch.save(peer.state_dict(), tmp_path / "v2.pth")
    report = convert_checkpoint(tmp_path / "v2.pth", "timm", "myresnetv2_50", tmp_path / "v2.safetensors")
    metadata = read_metadata(report.output)
    assert metadata["architecture"] == "myresnetv2_50" and metadata["source_format"] == "timm"
    assert json.loads(metadata["preprocessing"])["style"] == "inception"
    ours_sd, _ = load_weights(report.output)
    assert all(torch.equal(ours_sd[k], v.flatten(1) if k == "fc.weight" else v)
               for k, v in timm_resnetv2_to_ours(peer.state_dict()).items())
    x = image_batch()
    with torch.no_grad():
        ours_out, peer_out = _ours(report.output, "myresnetv2_50")(x), peer(x)
    # Tensors are bit-identical; timm's head is a 1x1 conv where ours is a Linear, so the last matmul
    # accumulates in another order (float rounding only).
    assert (ours_out - peer_out).abs().max() <= 1e-4


def _hf_resnet(**config):
    transformers = pytest.importorskip("transformers")
    model = transformers.ResNetForImageClassification(transformers.ResNetConfig(**config)).eval()
    randomize_batchnorm(model)
    return model


@pytest.mark.parametrize(
    "name,config",
    [
        ("myresnet50", dict(depths=[3, 4, 6, 3], layer_type="bottleneck", num_labels=1000)),
        ("myresnet18", dict(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic",
                            num_labels=10)),
    ],
)
def test_transformers_resnet_folder_matches_logits(tmp_path, name, config):
    peer = _hf_resnet(**config)
    peer.save_pretrained(tmp_path / "hf")  # config.json + model.safetensors, as on the Hub
    report = convert_checkpoint(tmp_path / "hf", "transformers", name, tmp_path / "out.safetensors")
    x = image_batch()
    with torch.no_grad():
        diff = (_ours(report.output, name, num_classes=config["num_labels"])(x) - peer(x).logits).abs().max().item()
    print(f"transformers -> {name}: max|dlogit|={diff:.2e}")
    assert diff <= 1e-4


def test_transformers_single_bin_file_converts(tmp_path):
    peer = _hf_resnet(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], layer_type="basic", num_labels=5)
    torch.save(peer.state_dict(), tmp_path / "pytorch_model.bin")
    report = convert_checkpoint(tmp_path / "pytorch_model.bin", "transformers", "myresnet18",
                                tmp_path / "out.safetensors")
    x = image_batch()
    with torch.no_grad():
        assert (_ours(report.output, "myresnet18", num_classes=5)(x) - peer(x).logits).abs().max() <= 1e-4


def test_wrong_architecture_checkpoint_lists_mismatches_and_writes_nothing(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(IncompatibleWeightsError, match=r"does not fit myresnet50.*shape mismatches"):
        convert_checkpoint(tmp_path / "r18.pth", "timm", "myresnet50", tmp_path / "out.safetensors")
    assert list(tmp_path.iterdir()) == [tmp_path / "r18.pth"]


def test_converted_file_records_provenance(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    report = convert_checkpoint(tmp_path / "r18.pth", "torchvision", "myresnet18", tmp_path / "o.safetensors")
    _, metadata = load_weights(report.output, expected_sha256=report.sha256)
    assert metadata["source_file"] == "r18.pth"
    assert metadata["source_sha256"] == sha256_of_file(tmp_path / "r18.pth")
    assert json.loads(metadata["preprocessing"])["mean"] == [0.485, 0.456, 0.406]
