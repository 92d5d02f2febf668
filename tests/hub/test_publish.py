"""Publishing: the dry-run folder loads back through timm (local-dir: and hf-hub:), and the upload goes
through the real huggingface_hub client to the loopback Hub API test double (or the real Hub with HF_TOKEN)."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import timm
import torch
import yaml

import resnet_hub
from resnet_hub.errors import CorruptWeightsError, IncompatibleWeightsError, PublishError
from resnet_hub.tasks.publish import build_hub_folder, publish
from resnet_hub.weights.io import save_weights, sha256_of_file


@pytest.fixture
def trained(tmp_path, timm_resnet18):
    """Our myresnet18 with timm's random weights, saved with our metadata (as training would)."""
    reference, _ = timm_resnet18
    path = tmp_path / "trained.safetensors"
    save_weights(reference.state_dict(), path, architecture="myresnet18")
    return reference, path


def _logits(model, images):
    with torch.no_grad():
        return model.eval()(images)


def test_dry_run_folder_is_timm_loadable_via_local_dir(trained, tmp_path, images, hub_cache):
    reference, weights = trained
    folder = build_hub_folder("myresnet18.a1_in1k", weights, tmp_path / "out", "me/myresnet18-test",
                              metrics={"top1": 71.5})
    assert sorted(p.name for p in folder.path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder.path / "config.json").read_text())
    assert config["architecture"] == "myresnet18" and config["num_classes"] == 1000 and config["num_features"] == 512
    assert config["resnet_hub"]["sha256"] == sha256_of_file(folder.path / "model.safetensors") == folder.sha256
    assert len(config["label_names"]) == 1000
    assert config["pretrained_cfg"]["interpolation"] == "bicubic"  # a1_in1k's recipe from the table
    model = timm.create_model(f"local-dir:{folder.path}", pretrained=True)
    assert torch.equal(_logits(model, images), _logits(reference, images))


def test_model_card_yaml_metadata(trained, tmp_path):
    _, weights = trained
    folder = build_hub_folder("myresnet18", weights, tmp_path / "out", "me/r18", license="mit",
                              datasets=["imagenet-1k"], metrics={"top1": 71.5})
    text = (folder.path / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["library_name"] == "timm" and header["license"] == "mit"
    assert "image-classification" in header["tags"] and header["datasets"] == ["imagenet-1k"]
    assert header["model-index"][0]["results"][0]["metrics"][0]["value"] == 71.5
    assert folder.sha256 in text and "hf-hub:me/r18" in text


def test_published_folder_loads_via_hf_hub_name_from_the_cache(trained, tmp_path, images, hub_cache):
    reference, weights = trained
    folder = build_hub_folder("myresnet18", weights, tmp_path / "out", "me/r18", label_names=None)
    files = {p.name: p.read_bytes() for p in folder.path.iterdir()}
    commit = hub_cache.add("me/r18", files)
    for name in ("hf-hub:me/r18", f"hf-hub:me/r18@{commit}"):
        model = timm.create_model(name, pretrained=True)
        assert torch.equal(_logits(model, images), _logits(reference, images))
    model = resnet_hub.create_model("hf-hub:me/r18", pretrained=True, num_classes=3)
    assert model.fc.out_features == 3


def test_hf_hub_load_verifies_the_published_sha256(trained, tmp_path, hub_cache):
    _, weights = trained
    folder = build_hub_folder("myresnet18", weights, tmp_path / "out", "me/r18")
    data = bytearray((folder.path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    hub_cache.add("me/r18", {"model.safetensors": bytes(data),
                             "config.json": (folder.path / "config.json").read_bytes()}, as_blobs=False)
    with pytest.raises(CorruptWeightsError, match="integrity check"):
        timm.create_model("hf-hub:me/r18", pretrained=True)
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "model.safetensors").write_bytes(bytes(data))
    (tampered / "config.json").write_bytes((folder.path / "config.json").read_bytes())
    with pytest.raises(CorruptWeightsError, match="integrity check"):
        timm.create_model(f"local-dir:{tampered}", pretrained=True)


def test_converted_keras_preprocessing_is_what_the_config_records(tmp_path):
    weights = tmp_path / "w.safetensors"
    model = resnet_hub.create_model("myresnetv2_50_keras", num_classes=5)
    save_weights(model, weights, "myresnetv2_50_keras", metadata={
        "preprocessing": json.dumps(dict(mean=[0.5] * 3, std=[0.5] * 3, style="tf"))})
    folder = build_hub_folder("myresnetv2_50_keras", weights, tmp_path / "out", "me/kv2")
    cfg = json.loads((folder.path / "config.json").read_text())
    assert cfg["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5] and cfg["num_classes"] == 5
    assert "label_names" not in cfg


def test_publish_refuses_bad_inputs(trained, tmp_path):
    _, weights = trained
    with pytest.raises(PublishError, match="ORG/NAME"):
        build_hub_folder("myresnet18", weights, tmp_path / "a", "not a repo")
    with pytest.raises(IncompatibleWeightsError, match="myresnet18"):
        build_hub_folder("myresnet34", weights, tmp_path / "b", "me/x")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("x")
    with pytest.raises(PublishError, match="not empty"):
        build_hub_folder("myresnet18", weights, tmp_path / "c", "me/x")


def test_upload_through_the_hub_api_double(trained, hub_double, images):
    reference, weights = trained
    result = publish("myresnet18", weights, "me/r18-up", private=True, token="hf_test_token_not_real",
                     endpoint=hub_double.url)
    repo = hub_double.repos["me/r18-up"]
    assert repo.private
    assert result.uploaded and result.commit_sha == repo.commits[-1]
    assert sorted(repo.files) == ["README.md", "config.json", "model.safetensors"]
    assert repo.files["model.safetensors"] == weights.read_bytes()
    assert json.loads(repo.files["config.json"])["resnet_hub"]["sha256"] == result.folder.sha256
    auth = [h.get("Authorization") or h.get("authorization") for m, p, h in hub_double.requests if m == "POST"]
    assert auth and all(a == "Bearer hf_test_token_not_real" for a in auth)
    # ... and it loads back online, through the same double, by its hf-hub: name
    model = resnet_hub.create_model("hf-hub:me/r18-up", pretrained=True)
    assert torch.equal(_logits(model, images), _logits(reference, images))


def test_upload_to_a_branch(trained, hub_double):
    _, weights = trained
    result = publish("myresnet18", weights, "me/r18-branch", revision="v1", token="hf_x", endpoint=hub_double.url)
    assert result.revision == "v1"
    assert ("POST", "/api/models/me/r18-branch/branch/v1") in [(m, p) for m, p, _ in hub_double.requests]
    assert any(p == "/api/models/me/r18-branch/commit/v1" for _, p, _ in hub_double.requests)


def test_upload_errors_become_publish_errors(trained, unreachable_hub):
    _, weights = trained
    with pytest.raises(PublishError, match="failed"):
        publish("myresnet18", weights, "me/r18", token="hf_x", endpoint=unreachable_hub)


@pytest.mark.network
def test_real_upload_to_the_hub(trained):
    token = os.environ.get("HF_TOKEN")
    if not token:
        pytest.skip("HF_TOKEN is not set: the real Hub upload is not exercised")
    from huggingface_hub import HfApi, whoami

    _, weights = trained
    repo_id = f"{whoami(token=token)['name']}/resnet-hub-test-{uuid.uuid4().hex[:8]}"
    try:
        result = publish("myresnet18", weights, repo_id, private=True, token=token)
        assert result.commit_sha and len(result.commit_sha) == 40
    finally:
        HfApi(token=token).delete_repo(repo_id, missing_ok=True)
