"""`resnet-hub finetune --engine ray`: the same loop on Ray Train workers. Few fits, each doing several jobs (Ray's
start-up takes tens of seconds): a 2-worker run whose worker is killed, then resumed to the end; a one-process
run resumed on Ray; and an address where no Ray answers fails in seconds with how to start one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from train_helpers import ONE_THREAD, digit_folder, finetune_in_subprocess

from helpers.cli import REPO_ROOT, child_env, run_cli
from helpers.processes import descendants, read_proc

from resnet_hub.errors import TrainingError
from resnet_hub.tasks.checkpoint import checkpoint_path, load_checkpoint, read_info
from resnet_hub.tasks.ray_train import WORK_PREFIX
from resnet_hub.weights.io import read_metadata

pytest.importorskip("ray.train", reason="needs the ray extra: pip install 'resnet-hub[ray]'")


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


def _complete_checkpoints(storage: Path) -> list[Path]:
    """Ray's persisted checkpoints that read back whole (a file appears before its upload has finished)."""
    complete = []
    for file in storage.glob("finetune/checkpoint_*/checkpoint.safetensors"):
        try:
            read_info(file)
        except TrainingError:
            continue
        complete.append(file)
    return complete


def _train_workers(root: int) -> list[int]:
    return [pid for pid in descendants(root) if b"RayTrainWorker" in read_proc(pid, "cmdline")]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc (Linux)")
def test_a_ray_worker_killed_mid_run_fails_the_run_with_one_line_and_resume_continues(tmp_path):
    """SIGKILL one of two Ray Train workers once Ray holds a complete checkpoint: the run stops with one line
    that names the failure and the checkpoint it copied beside the output, and ``--resume`` finishes from it."""
    data = digit_folder(tmp_path / "data", per_class=6)
    out = tmp_path / "out" / "model.safetensors"
    args = ["finetune", "myresnet18", "--data", str(data), "--img-size", "32", "--batch-size", "1",
            "--epochs", "4", "--engine", "ray", "--num-workers", "2", "-o", str(out)]
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("w") as out_file, stderr.open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "resnet_hub", *args], stdout=out_file, stderr=err_file,
                                env=child_env(ONE_THREAD), cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + 600
            while not _complete_checkpoints(out.parent / "model.ray"):
                assert proc.poll() is None, stderr.read_text()[-4000:]
                assert time.monotonic() < deadline, "no Ray checkpoint within 10 minutes"
                time.sleep(0.2)
            workers = _train_workers(proc.pid)
            assert workers, "no RayTrainWorker process under the driver"
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
            returncode = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    err_text, out_text = stderr.read_text(), stdout.read_text()
    report = f"exit {returncode}\n--- stdout\n{out_text[-3000:]}\n--- stderr\n{err_text[-6000:]}"
    assert returncode == 1, report
    ours = [line for line in err_text.splitlines() if "Error: Ray Train failed" in line]
    assert len(ours) == 1 and ours[0].startswith("Error: Ray Train failed"), report
    assert f"{checkpoint_path(out)} (add --resume to continue)" in ours[0], report
    done = load_checkpoint(checkpoint_path(out)).epoch
    assert 1 <= done < 4 and not out.exists()
    resumed = run_cli(*args, "--resume", "--json", env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert json.loads(resumed.stdout)["classes"] == ["digit0", "digit1", "digit7"]
    record = json.loads(read_metadata(out)["training"])
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3, 4]
    assert record["run"]["resumed_after_epoch"] == done
    assert record["run"]["engine"] == "ray" and record["run"]["world_size"] == 2
    state = load_checkpoint(checkpoint_path(out))  # Ray's last checkpoint, copied beside the output
    assert state.epoch == 4 and state.info["engine"] == "ray"
    assert not (out.parent / "model.ray").exists()  # Ray's own copies are gone once the fit has ended
    # the killed worker ran no cleanup; the resumed run's workers swept its scratch folder (its epoch copies)
    assert not list(Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}{killed}-*"))
