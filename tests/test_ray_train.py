"""`resnet-hub finetune --engine ray`: the same loop on Ray Train workers (one small fit: Ray's start-up takes
minutes on a loaded machine), and an address where no Ray answers fails in seconds with how to start one."""

from __future__ import annotations

import json
import socket

import pytest
from train_helpers import ONE_THREAD, digit_folder, finetune_in_subprocess

from helpers.cli import run_cli

from resnet_hub.tasks.checkpoint import checkpoint_path, load_checkpoint
from resnet_hub.weights.io import read_metadata

pytest.importorskip("ray.train", reason="needs the ray extra: pip install 'resnet-hub[ray]'")


def test_ray_train_fits_on_two_workers_and_leaves_its_checkpoint_beside_the_output(tmp_path):
    data = digit_folder(tmp_path / "data", per_class=6)
    out = tmp_path / "out" / "model.safetensors"
    args = ("finetune", "myresnet18", "--data", str(data), "--img-size", "32", "--batch-size", "4",
            "--engine", "ray", "--num-workers", "2", "-o", str(out))
    proc = run_cli(*args, "--epochs", "1", "--json", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads(read_metadata(out)["training"])
    assert record["run"]["engine"] == "ray" and record["run"]["world_size"] == 2
    assert json.loads(proc.stdout)["classes"] == ["digit0", "digit1", "digit7"]
    state = load_checkpoint(checkpoint_path(out))  # Ray's checkpoint, copied beside the output
    assert state.epoch == 1 and state.info["engine"] == "ray"
    assert not (out.parent / "model.ray").exists()


def test_ray_resumes_a_run_killed_mid_epoch_from_the_checkpoint_beside_the_output(tmp_path):
    """A one-process run SIGKILLed in epoch 2 leaves epoch 1's checkpoint; ``--engine ray --resume`` continues it
    (Ray has no checkpoint of its own for this run, so the one beside the output is the start)."""
    data = digit_folder(tmp_path / "data", per_class=6)
    out = tmp_path / "out" / "model.safetensors"
    killed = finetune_in_subprocess(data, out, dict(epochs=2, img_size=32, batch_size=4), kill_at="2,1")
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert load_checkpoint(checkpoint_path(out)).epoch == 1 and not out.exists()
    proc = run_cli("finetune", "myresnet18", "--data", str(data), "--img-size", "32", "--batch-size", "4",
                   "--epochs", "2", "--engine", "ray", "--num-workers", "1", "-o", str(out), "--resume", "--json",
                   env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads(read_metadata(out)["training"])
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert record["run"]["engine"] == "ray" and record["run"]["resumed_after_epoch"] == 1
    assert load_checkpoint(checkpoint_path(out)).epoch == 2


def test_a_ray_address_where_nothing_answers_fails_in_seconds_saying_how_to_start_ray(tmp_path):
    with socket.socket() as sock:  # a port on this machine that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_cli("finetune", "myresnet18", "--data", "digits", "--engine", "ray", "--address",
                   f"127.0.0.1:{port}", "-o", str(tmp_path / "x.safetensors"), env=ONE_THREAD)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"No Ray cluster answers at 127.0.0.1:{port}" in proc.stderr
    assert f"ray start --head --port {port}" in proc.stderr
    assert not list(tmp_path.iterdir()) or all(p.suffix != ".safetensors" for p in tmp_path.iterdir())
