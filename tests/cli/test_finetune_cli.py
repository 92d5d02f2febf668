"""`resnet-hub finetune` as a user runs it: progress on stderr, a JSON record on stdout, one clear line on bad input."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from resnet_hub.weights.io import read_metadata
from helpers.cli import run_cli


def _folder(root, classes=("circle", "square"), per_class=6):
    """Two visibly different classes of real (drawn) images."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 40, (24, 24), dtype=np.uint8)
            if name == "square":
                pixels[6:18, 6:18] = 230
            else:
                yy, xx = np.mgrid[:24, :24]
                pixels[(yy - 12) ** 2 + (xx - 12) ** 2 < 40] = 230
            Image.fromarray(pixels, mode="L").save(root / name / f"{i}.png")  # grey: becomes RGB on load
    return root


def test_finetune_writes_weights_and_prints_the_record(tmp_path):
    data = _folder(tmp_path / "shapes")
    out = tmp_path / "shapes.safetensors"
    proc = run_cli("finetune", "myresnet18", "--data", str(data), "--epochs", "2", "--img-size", "32",
                   "--batch-size", "4", "--output", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["classes"] == ["circle", "square"] and record["epochs"] == 2 and len(record["history"]) == 2
    assert "epoch 2/2" in proc.stderr  # a progress bar per epoch
    assert json.loads(read_metadata(out)["label_names"]) == ["circle", "square"]
    # the same file predicts with the recorded class names
    predicted = run_cli("predict", "myresnet18", str(data / "square" / "0.png"), "--weights", str(out),
                        "--json", "--topk", "1")
    assert json.loads(predicted.stdout)["predictions"][0]["topk"][0]["label"] in ("circle", "square")


def test_single_class_folder_is_one_clear_line_and_no_output(tmp_path):
    data = _folder(tmp_path / "one", classes=("only",))
    out = tmp_path / "x.safetensors"
    proc = run_cli("finetune", "myresnet18", "--data", str(data), "--output", str(out))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "single class" in proc.stderr and not out.exists()


def test_resume_without_a_checkpoint_is_one_clear_line(tmp_path):
    out = tmp_path / "never-ran.safetensors"
    proc = run_cli("finetune", "myresnet18", "--data", "digits", "--output", str(out), "--resume")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "No checkpoint to resume from" in proc.stderr and "never-ran.checkpoint.safetensors" in proc.stderr
    assert not out.exists()


def test_more_workers_than_cpus_is_one_clear_line_naming_the_count(tmp_path):
    import os

    cpus = len(os.sched_getaffinity(0))
    proc = run_cli("finetune", "myresnet18", "--data", "digits", "--workers", str(cpus + 7),
                   "--output", str(tmp_path / "x.safetensors"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"--workers {cpus + 7}" in proc.stderr and f"use {cpus} CPU" in proc.stderr


def test_nproc_checks_the_output_once_before_starting_processes(tmp_path):
    (tmp_path / "file").write_text("x")
    proc = run_cli("finetune", "myresnet18", "--data", "digits", "--nproc", "2",
                   "--output", str(tmp_path / "file" / "x.safetensors"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.count("is a file, not a folder") == 1 and "rank" not in proc.stderr
