"""``resnet-hub convert`` as users run it: the real console entry point in a subprocess."""

from __future__ import annotations

import os

import timm
import torch

from resnet_hub.weights.io import load_weights, sha256_of_file
from helpers.cli import run_cli


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cli_convert_writes_safetensors_refuses_overwrite_and_refuses_code(tmp_path):
    peer = timm.create_model("resnet18", num_classes=4)
    torch.save(peer.state_dict(), tmp_path / "r18.pth")
    out = tmp_path / "r18.safetensors"

    done = run_cli("convert", tmp_path / "r18.pth", "--from", "torchvision", "--model", "myresnet18",
                "--output", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"sha256 {sha256_of_file(out)}" in done.stdout
    state_dict, metadata = load_weights(out)
    assert metadata["architecture"] == "myresnet18" and metadata["source_format"] == "torchvision"
    assert torch.equal(state_dict["fc.weight"], peer.state_dict()["fc.weight"])

    again = run_cli("convert", tmp_path / "r18.pth", "--from", "torchvision", "--model", "myresnet18",
                 "--output", out, cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr and "--force" in again.stderr
    forced = run_cli("convert", tmp_path / "r18.pth", "--from", "timm", "--model", "myresnet18",
                  "--output", out, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert load_weights(out)[1]["source_format"] == "timm"

    marker = tmp_path / "pwned"
    torch.save({"fc.weight": torch.zeros(1), "x": _Payload(marker)}, tmp_path / "evil.pth")
    evil = run_cli("convert", tmp_path / "evil.pth", "--from", "torchvision", "--model", "myresnet18",
                "--output", tmp_path / "evil.safetensors", cwd=tmp_path)
    assert evil.returncode == 1 and "Refused" in evil.stderr and "Traceback" not in evil.stderr
    assert not marker.exists() and not (tmp_path / "evil.safetensors").exists()
