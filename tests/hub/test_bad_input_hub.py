"""Issue 11, Hub side: offline / unreachable Hub, odd caches and published-repo names, with the real
huggingface_hub client, a hand-laid cache or the loopback Hub API double (never the network)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save

import resnet_hub
from resnet_hub.errors import CorruptWeightsError, HubDownloadError, IncompatibleWeightsError, PublishError
from resnet_hub.zoo.factory import resolve_model
from resnet_hub.tasks.publish import publish
from helpers.cli import one_error_line, run_cli

REPO_ROOT = Path(resnet_hub.__file__).resolve().parent.parent


# --- item 4: timm.create_model('hf-hub:...') with no network fails fast ------------------------------------

def test_timm_hf_hub_name_without_network_fails_fast_with_advice(unreachable_hub):
    start = time.monotonic()
    with pytest.raises(HubDownloadError) as info:
        timm.create_model("hf-hub:my-org/finetune", pretrained=True)
    elapsed = time.monotonic() - start
    assert "Cannot reach" in str(info.value) and "HF_HUB_OFFLINE=1" in str(info.value)
    assert elapsed < 8, f"took {elapsed:.1f}s (huggingface_hub's own retries take ~25 s)"


def test_hf_hub_name_in_a_fresh_process_with_hf_endpoint_on_a_closed_port(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = ("import time, timm, resnet_hub\nstart = time.monotonic()\ntry:\n"
            "    timm.create_model('hf-hub:my-org/finetune', pretrained=True)\n"
            "except resnet_hub.HubDownloadError as exc:\n"
            "    print('FAILED', round(time.monotonic() - start, 2), exc)\n")
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_CACHE=str(tmp_path / "cache"), HF_HUB_DISABLE_XET="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.startswith("FAILED"), result.stderr[-2000:]
    assert float(result.stdout.split()[1]) < 8, result.stdout
    assert "weights=PATH" in result.stdout and "Retrying" not in result.stderr


# --- item 9: a garbage mirror organisation --------------------------------------------------------------

def test_garbage_resnet_hub_org_is_one_clear_error(hub_cache, monkeypatch):
    monkeypatch.setenv("RESNET_HUB_ORG", "!!garbage org//")
    with pytest.raises(HubDownloadError, match=r"not a valid Hub repo id.*\$RESNET_HUB_ORG"):
        resnet_hub.create_model("myresnet18", pretrained=True)
    result = run_cli("predict", "myresnet18", "x.png", "--pretrained", env={"RESNET_HUB_ORG": "!!garbage org//"})
    assert "not a valid Hub repo id" in one_error_line(result)


# --- item 10: a cached file of another architecture ------------------------------------------------------

def test_cached_weights_of_another_architecture_name_what_they_look_like(hub_cache):
    data = save(timm.create_model("resnet34").state_dict(), metadata={"format": "pt"})  # no architecture record
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": data})
    with pytest.raises(IncompatibleWeightsError) as info:
        timm.create_model("myresnet18", pretrained=True)
    message = str(info.value)
    assert "look like myresnet34 (timm resnet34, torchvision resnet34)" in message
    assert "Missing key" not in message and "Unexpected key" not in message


def test_local_file_of_another_depth_names_it_too(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "r50.safetensors"  # a plain safetensors file: no architecture recorded
    save_file(resnet_hub.create_model("myresnet50").state_dict(), str(path))
    with pytest.raises(IncompatibleWeightsError, match=r"look like myresnet50 \(timm resnet50"):
        resnet_hub.create_model("myresnet18", weights=path)


# --- item 1 (Hub path): timm loads these itself, so they are checked first -------------------------------

def test_cached_integer_weights_are_refused_before_timm_casts_them(hub_cache):
    state = {k: v.to(torch.int64) for k, v in timm.create_model("resnet18").state_dict().items()}
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": save(state, metadata={"format": "pt"})})
    with pytest.raises(IncompatibleWeightsError, match=r"wrong type .* 102 tensor\(s\): \S+: int64 \(expected "
                                                       r"floating-point\)"):
        timm.create_model("myresnet18", pretrained=True)


# --- item 21: plain files in the cache are verified too -------------------------------------------------

def _flipped(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[-1] ^= 0xFF  # same size, one tensor byte changed: only a checksum notices
    return bytes(changed)


def test_plain_cached_file_with_a_flipped_byte_fails_against_the_hubs_checksum(hub_double, hub_cache, timm_resnet18):
    _, data = timm_resnet18
    commit = hub_double.add_repo("timm/resnet18.a1_in1k", {"model.safetensors": data})
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": _flipped(data)}, commit=commit, as_blobs=False)
    with pytest.raises(CorruptWeightsError, match="failed its integrity check"):
        timm.create_model("myresnet18", pretrained=True)


def test_plain_cached_file_offline_with_nothing_to_verify_against_is_refused(hub_cache, timm_resnet18):
    _, data = timm_resnet18
    hub_cache.add("timm/resnet18.a1_in1k", {"model.safetensors": _flipped(data)}, as_blobs=False)
    with pytest.raises(CorruptWeightsError, match="cannot be verified"):
        timm.create_model("myresnet18", pretrained=True)


# --- item 22: hf-hub:ORG/NAME names in the commands -----------------------------------------------------

@pytest.fixture
def published_repo(hub_cache, tmp_path, bn_randomizer):
    """A myresnet18 (3 classes) published with a dry run and laid into the offline cache as me/r18."""
    torch.manual_seed(0)
    model = bn_randomizer(resnet_hub.create_model("myresnet18", num_classes=3)).eval()
    weights = tmp_path / "r18.safetensors"
    resnet_hub.save_weights(model, weights, architecture="myresnet18")
    folder = publish("myresnet18", weights, "me/r18", dry_run_dir=tmp_path / "hub", label_names=["a", "b", "c"]).folder
    hub_cache.add("me/r18", {name: (folder.path / name).read_bytes() for name in folder.files})
    return model, folder


def test_resolve_model_reads_the_published_config(published_repo):
    _, folder = published_repo
    ref = resolve_model("hf-hub:me/r18")
    assert (ref.architecture, ref.hub_id, ref.num_classes, ref.tag) == ("myresnet18", "me/r18", 3, None)
    assert ref.weights_label == "hf-hub:me/r18"
    assert resnet_hub.get_variant("hf-hub:me/r18").name == "myresnet18"


def test_info_predict_and_export_accept_hf_hub_names(published_repo, tmp_path):
    from PIL import Image

    info = run_cli("info", "hf-hub:me/r18", "--json")
    assert info.returncode == 0, info.stderr[-2000:]
    described = json.loads(info.stdout)
    assert described["name"] == "myresnet18" and described["hub"]["num_classes"] == 3
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "red.png")
    predicted = run_cli("predict", "hf-hub:me/r18", str(tmp_path / "red.png"), "--pretrained", "--json", "--topk", "3")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    top = json.loads(predicted.stdout)["predictions"][0]["topk"]
    assert len(top) == 3 and sorted(entry["label"] for entry in top) == ["a", "b", "c"]  # the repo's class names
    from resnet_hub.export.source import load_model_source

    source = load_model_source("hf-hub:me/r18", pretrained=True)
    assert source.weights == "pretrained:hf-hub:me/r18" and source.num_classes == 3
    model, _ = published_repo
    assert torch.equal(source.model.state_dict()["fc.weight"], model.state_dict()["fc.weight"])


def test_hf_hub_repo_of_a_timm_architecture_points_at_our_variant(hub_cache):
    hub_cache.add("timm/resnet50.a1_in1k", {"config.json": json.dumps({"architecture": "resnet50"}).encode()})
    with pytest.raises(resnet_hub.UnknownModelError, match="not a resnet-hub variant. Its weights fit myresnet50"):
        resolve_model("hf-hub:timm/resnet50.a1_in1k")


# --- items 11 and 19: publish inputs --------------------------------------------------------------------

def test_publish_labels_file_missing_or_folder_is_one_clear_line(tmp_path):
    weights = tmp_path / "w.safetensors"
    resnet_hub.save_weights(resnet_hub.create_model("myresnet18", num_classes=2), weights, architecture="myresnet18")
    for labels, needle in ((tmp_path / "missing.txt", "Labels file not found"), (tmp_path, "is a folder")):
        result = run_cli("publish", "myresnet18", "--weights", str(weights), "--repo-id", "me/r", "--labels",
                      str(labels), "--dry-run", str(tmp_path / "out"))
        assert needle in one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_publish_license_must_be_a_hub_identifier(tmp_path):
    weights = tmp_path / "w.safetensors"
    resnet_hub.save_weights(resnet_hub.create_model("myresnet18", num_classes=2), weights, architecture="myresnet18")
    with pytest.raises(PublishError, match="not a Hub license identifier"):
        publish("myresnet18", weights, "me/r", dry_run_dir=tmp_path / "a", license="not a license")
    with pytest.raises(PublishError, match="Did you mean: apache-2.0"):
        publish("myresnet18", weights, "me/r", dry_run_dir=tmp_path / "b", license="apache-2")
    folder = publish("myresnet18", weights, "me/r", dry_run_dir=tmp_path / "c", license="Apache-2.0").folder
    assert "license: apache-2.0" in (folder.path / "README.md").read_text()


def test_evaluate_a_published_fine_tune_by_its_hf_hub_name_uses_the_repos_preprocessing(hub_cache, digits_model,
                                                                                        tmp_path):
    """A fine-tune published to the Hub (32 px digits, 10 named classes) evaluates by its hf-hub name exactly as its
    local file does: the repo's recorded preprocessing and class names, not the variant's 224 px ImageNet
    defaults, and the repo (not the variant's default tag) as the weights' provenance."""
    from resnet_hub.tasks.evaluate import evaluate, resolve_target

    folder = publish("myresnet18", digits_model, "me/digits", dry_run_dir=tmp_path / "hub").folder
    hub_cache.add("me/digits", {name: (folder.path / name).read_bytes() for name in folder.files})
    local = evaluate(str(digits_model), "digits")
    target = resolve_target("hf-hub:me/digits", pretrained=True)
    assert target.data_config["input_size"] == (3, 32, 32)
    assert "hf-hub:me/digits" in target.description
    published = evaluate(target, "digits")
    assert local.top1 >= 0.9 and published.top1 == local.top1 and published.n == local.n == 359
