"""Data-parallel fine-tuning on CPU (gloo): N processes step like one process on the same images, only rank 0
writes and reports, and a process that dies stops the run with its reason while the last checkpoint survives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from train_helpers import ONE_THREAD, REPO_ROOT, digit_folder

from helpers.cli import child_env, run_cli
from helpers.processes import parent_pids, read_proc

import resnet_hub
from resnet_hub.tasks.checkpoint import checkpoint_path, load_checkpoint
from resnet_hub.weights.io import read_metadata

COMMON = ("--img-size", "32", "--epochs", "1", "--lr", "0.005", "--seed", "3")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp") / "data"
    digit_folder(root, per_class=10, split="train")  # 30 training images: 3 steps of 10, or of 5 per process
    digit_folder(root, per_class=4, split="val", start=20)
    return root


def test_two_processes_with_sync_bn_and_half_the_batch_step_like_one_process(folder, tmp_path):
    one, two, unsynced = tmp_path / "one.safetensors", tmp_path / "two.safetensors", tmp_path / "unsynced.safetensors"
    proc = run_cli("finetune", "myresnet18", "--data", str(folder), *COMMON, "--batch-size", "10", "-o", str(one),
                   env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli("finetune", "myresnet18", "--data", str(folder), *COMMON, "--batch-size", "5", "--nproc", "2",
                   "--sync-bn", "-o", str(two), "--json", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(proc.stdout)  # printed once: by rank 0 only
    assert record["run"]["world_size"] == 2 and record["run"]["engine"] == "torchrun"
    assert proc.stderr.count("epoch 1/1") <= 1
    a, b = resnet_hub.load_weights(one)[0], resnet_hub.load_weights(two)[0]
    assert [k for k in a if not torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-4)] == []
    # without --sync-bn each process normalises its own 5 images: the same check tells the runs apart
    proc = run_cli("finetune", "myresnet18", "--data", str(folder), *COMMON, "--batch-size", "5", "--nproc", "2",
                   "-o", str(unsynced), env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    c = resnet_hub.load_weights(unsynced)[0]
    assert [k for k in a if not torch.allclose(a[k], c[k], rtol=1e-3, atol=1e-4)] != []


def _children_with_rank(parent: int, rank: int) -> list[int]:
    """Pids of the children of ``parent`` whose environment says RANK=<rank> (the training processes, not their
    DataLoader workers, which inherit the variable one level further down)."""
    return [pid for pid, ppid in parent_pids().items()
            if ppid == parent and f"RANK={rank}".encode() in read_proc(pid, "environ").split(b"\0")]


def test_a_process_killed_mid_epoch_fails_the_run_with_its_reason_and_the_checkpoint_resumes(folder, tmp_path):
    out = tmp_path / "run.safetensors"
    args = [sys.executable, "-m", "resnet_hub", "finetune", "myresnet18", "--data", str(folder), "--img-size", "32",
            "--epochs", "3", "--batch-size", "1", "--sync-bn", "--nproc", "2", "-o", str(out)]
    launcher = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=child_env(ONE_THREAD), cwd=REPO_ROOT)
    try:
        checkpoint = checkpoint_path(out)
        while not checkpoint.exists() and launcher.poll() is None:  # epoch 1 done: epoch 2 (15 steps) is running
            time.sleep(0.2)
        victims = _children_with_rank(launcher.pid, 1)
        assert victims, "rank 1 not found"
        os.kill(victims[0], signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=600)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 1, stderr[-3000:]
    assert "rank 1" in stderr and "SIGKILL" in stderr and "Traceback" not in stderr.split("Error:")[-1]
    assert not out.exists()
    assert load_checkpoint(checkpoint).epoch in (1, 2)  # whole: the last complete epoch
    resumed = run_cli(*args[3:], "--resume", env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads(read_metadata(out)["training"])
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3] and record["run"]["world_size"] == 2


def test_two_processes_learn_the_digits_and_evaluate_agrees(tmp_path):
    out = tmp_path / "digits.safetensors"
    proc = run_cli("finetune", "myresnet18", "--data", "digits", "--img-size", "32", "--epochs", "5",
                   "--batch-size", "32", "--nproc", "2", "-o", str(out), "--json", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reported = json.loads(proc.stdout)
    assert reported["val_top1"] >= 0.9, reported["history"]
    assert reported["run"]["world_size"] == 2 and reported["run"]["throughput_img_s"] > 0
    assert reported["run"]["backend"] == "gloo"
    evaluated = run_cli("evaluate", str(out), "--data", "digits", "--json", env=ONE_THREAD)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    n = reported["data"]["val"]["n"]  # batch composition may move a logit by float noise: one image at most
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(reported["val_top1"], abs=1.01 / n)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices (nccl between two processes)")
def test_two_gpus_train_with_nccl_and_learn_the_digits(tmp_path):
    out = tmp_path / "digits.safetensors"
    proc = run_cli("finetune", "myresnet18", "--data", "digits", "--img-size", "32", "--epochs", "5",
                   "--batch-size", "32", "--nproc", "2", "--device", "cuda", "--sync-bn", "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    reported = json.loads(proc.stdout)
    assert reported["val_top1"] >= 0.9, reported["history"]
    run = reported["run"]
    assert run["backend"] == "nccl" and run["device"] == "cuda" and run["world_size"] == 2 and run["channels_last"]
