"""Pretrained loading through the real huggingface_hub client and timm's builder, from a hand-laid cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import timm
import torch

import resnet_hub
from hub_helpers import safetensors_bytes
from resnet_hub.errors import CorruptWeightsError, HubDownloadError, IncompatibleWeightsError, WeightsError

REPO_ROOT = Path(resnet_hub.__file__).resolve().parent.parent


def _logits(model, images):
    with torch.no_grad():
        return model.eval()(images)


def test_timm_create_model_pretrained_loads_the_cached_safetensors(hub_cache, timm_resnet18, images):
    reference, data = timm_resnet18
    commit = hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data})
    model = timm.create_model("myresnet18", pretrained=True)
    assert torch.equal(_logits(model, images), _logits(reference, images))
    assert model.pretrained_cfg["file"] == str(hub_cache.path("timm/resnet18.a1_in1k", "model.safetensors", commit))
    assert model.pretrained_cfg["hf_hub_id"] == "timm/resnet18.a1_in1k"


def test_resnet_hub_create_model_loads_a_named_tag(hub_cache, timm_resnet18, images):
    reference, data = timm_resnet18
    hub_cache.add("timm/resnet18.tv_in1k", {"model.safetensors": data})
    model = resnet_hub.create_model("myresnet18.tv_in1k", pretrained=True)
    assert torch.equal(_logits(model, images), _logits(reference, images))


def test_torch_hub_load_local_repo_pretrained(hub_cache, timm_resnet18, images):
    reference, data = timm_resnet18
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data})
    model = torch.hub.load(str(REPO_ROOT), "myresnet18", source="local", pretrained=True, trust_repo=True)
    assert torch.equal(_logits(model, images), _logits(reference, images))


def test_timm_num_classes_and_in_chans_adaptation_still_apply(hub_cache, timm_resnet18):
    reference, data = timm_resnet18
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data})
    model = timm.create_model("myresnet18", pretrained=True, num_classes=10, in_chans=1)
    assert model.fc.out_features == 10
    assert model.conv1.weight.shape[1] == 1
    assert torch.equal(model.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(model.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_resnetv2_pretrained_goes_through_the_timm_layout_filter(hub_cache, images):
    reference = timm.create_model("resnetv2_50").eval()
    hub_cache.add("timm/resnetv2_50.a1h_in1k", {"model.safetensors": safetensors_bytes(reference)})
    model = timm.create_model("myresnetv2_50", pretrained=True)
    # timm's head is a 1x1 conv, ours a Linear: same numbers, different accumulation order.
    assert (_logits(model, images) - _logits(reference, images)).abs().max() <= 1e-4


def test_hub_org_and_revision_point_at_a_mirror(hub_cache, timm_resnet18, images, monkeypatch):
    reference, data = timm_resnet18
    other = timm.create_model("resnet18")
    hub_cache.add("mirror/resnet18.a1_in1k", {"model.safetensors": safetensors_bytes(other)}, revision="main")
    pinned = hub_cache.add("mirror/resnet18.a1_in1k", {"model.safetensors": data}, revision="v2")
    # argument form
    model = resnet_hub.create_model("myresnet18", pretrained=True, hub_org="mirror", hub_revision="v2")
    assert model.pretrained_cfg["hf_hub_id"] == "mirror/resnet18.a1_in1k@v2"
    assert torch.equal(_logits(model, images), _logits(reference, images))
    # a commit sha pins too, and timm's entrypoint accepts the same keywords
    model = timm.create_model("myresnet18", pretrained=True, hub_org="mirror", hub_revision=pinned)
    assert torch.equal(_logits(model, images), _logits(reference, images))
    # environment form
    monkeypatch.setenv("RESNET_HUB_ORG", "mirror")
    monkeypatch.setenv("RESNET_HUB_REVISION", "v2")
    model = timm.create_model("myresnet18", pretrained=True)
    assert torch.equal(_logits(model, images), _logits(reference, images))


def test_hub_arguments_are_harmless_without_pretrained():
    model = resnet_hub.create_model("myresnet18", hub_org="mirror", hub_revision="v1")
    assert model.fc.out_features == 1000


def test_offline_missing_file_names_the_two_ways_out(hub_cache):
    with pytest.raises(HubDownloadError, match="HF_HUB_OFFLINE is set") as info:
        timm.create_model("myresnet18", pretrained=True)
    assert "weights=PATH" in str(info.value)


def test_no_network_fails_fast_with_one_clear_message(unreachable_hub):
    start = time.monotonic()
    with pytest.raises(HubDownloadError) as info:
        resnet_hub.create_model("myresnet18", pretrained=True)
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert "HF_HUB_OFFLINE=1" in message and "weights=PATH" in message and "Cannot reach" in message
    assert elapsed < 5, f"took {elapsed:.1f}s"


def test_no_network_still_loads_a_cached_copy(unreachable_hub, hub_cache, timm_resnet18, images):
    reference, data = timm_resnet18
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data})
    start = time.monotonic()
    model = timm.create_model("myresnet18", pretrained=True)
    assert time.monotonic() - start < 5
    assert torch.equal(_logits(model, images), _logits(reference, images))


def test_corrupted_cached_blob_fails_its_sha256(hub_cache, timm_resnet18):
    _, data = timm_resnet18
    commit = hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data})
    blob = hub_cache.path("timm/resnet18.a1_in1k", "model.safetensors", commit).resolve()
    os.chmod(blob, 0o644)
    flipped = bytearray(blob.read_bytes())
    flipped[-1] ^= 0xFF  # same size, one tensor byte changed: only a checksum notices
    blob.write_bytes(bytes(flipped))
    with pytest.raises(CorruptWeightsError, match="integrity check"):
        timm.create_model("myresnet18", pretrained=True)


def test_published_sha256_in_config_json_is_verified(hub_cache, timm_resnet18):
    _, data = timm_resnet18
    config = {"architecture": "myresnet18", "resnet_hub": {"sha256": "0" * 64}}
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data, "config.json": json.dumps(config).encode()},
                  as_blobs=False)
    with pytest.raises(CorruptWeightsError, match="expected " + "0" * 64):
        timm.create_model("myresnet18", pretrained=True)


def test_truncated_cached_file_is_reported(hub_cache, timm_resnet18):
    _, data = timm_resnet18
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data[: len(data) - 1000]}, as_blobs=False)
    with pytest.raises(CorruptWeightsError, match="truncated"):
        timm.create_model("myresnet18", pretrained=True)


def test_weights_recorded_for_another_architecture_are_refused(hub_cache):
    from safetensors.torch import save

    other = timm.create_model("resnet18").state_dict()
    data = save(other, metadata={"format": "pt", "architecture": "myresnet34"})
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data})
    with pytest.raises(IncompatibleWeightsError, match="myresnet34"):
        timm.create_model("myresnet18", pretrained=True)


def test_variant_without_published_weights_says_how_to_get_some(hub_cache):
    with pytest.raises(WeightsError, match="resnet-hub convert"):
        resnet_hub.create_model("myresnet50_v1", pretrained=True)


def test_a_repo_without_safetensors_is_refused_without_unpickling(hub_double, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle

    hub_double.add_repo("timm/resnet18.a1_in1k", {"pytorch_model.bin": pickle.dumps(Payload())})
    with pytest.raises(HubDownloadError, match="has no model.safetensors"):
        timm.create_model("myresnet18", pretrained=True)
    assert not marker.exists()
    assert not any(p.endswith("pytorch_model.bin") for p in hub_double.paths_requested())


def test_online_download_through_the_hub_api_double(hub_double, timm_resnet18, images):
    reference, data = timm_resnet18
    hub_double.add_repo("timm/resnet18.a1_in1k", {"model.safetensors": data})
    model = resnet_hub.create_model("myresnet18", pretrained=True)
    assert torch.equal(_logits(model, images), _logits(reference, images))
    assert any(p.endswith("/resolve/main/model.safetensors") for p in hub_double.paths_requested())
