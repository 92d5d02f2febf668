"""``resnet-hub publish --dry-run`` as users run it: the real console entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import timm
import torch

from resnet_hub.weights.io import save_weights, sha256_of_file


def test_cli_publish_dry_run_writes_a_loadable_folder(tmp_path, timm_resnet18, images):
    reference, _ = timm_resnet18
    weights = tmp_path / "w.safetensors"
    save_weights(reference.state_dict(), weights, architecture="myresnet18")
    out = tmp_path / "hub-folder"
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "resnet_hub", "publish", "myresnet18", "--weights", str(weights),
         "--repo-id", "me/r18", "--dry-run", str(out), "--license", "apache-2.0", "--metric", "top1=70.1"],
        env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert sha256_of_file(out / "model.safetensors") in done.stdout
    assert "nothing uploaded" in done.stdout
    assert json.loads((out / "config.json").read_text())["architecture"] == "myresnet18"
    assert "top1" in (out / "README.md").read_text()
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(model(images), reference.eval()(images))

    bad = subprocess.run(
        [sys.executable, "-m", "resnet_hub", "publish", "myresnet34", "--weights", str(weights),
         "--repo-id", "me/r34", "--dry-run", str(tmp_path / "x")], env=env, capture_output=True, text=True,
        timeout=180)
    assert bad.returncode == 1 and "myresnet18" in bad.stderr and "Traceback" not in bad.stderr
