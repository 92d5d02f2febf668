"""Resumable fine-tuning: a run SIGKILLed mid-epoch and resumed writes the weights an uninterrupted run writes;
checkpoints are safetensors + JSON, atomic, and refuse to continue a different run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from train_helpers import digit_folder, finetune_in_subprocess

import resnet_hub
from resnet_hub.tasks.checkpoint import STATE_KEY, checkpoint_path, load_checkpoint, save_checkpoint
from resnet_hub.errors import TrainingError
from resnet_hub.tasks.train import FinetuneOptions, finetune
from resnet_hub.weights.io import read_metadata

OPTIONS = dict(epochs=3, img_size=32, batch_size=4, opt="adamw", lr=0.003, seed=5)


def test_a_run_killed_mid_epoch_and_resumed_writes_the_weights_of_an_uninterrupted_run(tmp_path):
    data = digit_folder(tmp_path / "data", per_class=8)
    whole = finetune_in_subprocess(data, tmp_path / "whole" / "model.safetensors", OPTIONS)
    assert whole.returncode == 0, whole.stderr[-3000:]

    out = tmp_path / "killed" / "model.safetensors"
    killed = finetune_in_subprocess(data, out, OPTIONS, kill_at="2,3")  # SIGKILL at step 3 of epoch 2
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not out.exists()
    assert load_checkpoint(checkpoint_path(out)).epoch == 1  # the last complete epoch survived

    resumed = finetune_in_subprocess(data, out, OPTIONS, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)
    assert any("resuming after epoch 1 of 3" in note for note in report["notes"])
    assert report["run"]["resumed_after_epoch"] == 1

    expected, _ = resnet_hub.load_weights(tmp_path / "whole" / "model.safetensors")
    actual, metadata = resnet_hub.load_weights(out)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert different == []
    record = json.loads(metadata["training"])
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
    assert not [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A finished one-epoch run of 2: its checkpoint (epoch 1 of 2) is what the resume checks read."""
    root = tmp_path_factory.mktemp("resume")
    data = digit_folder(root / "data", per_class=5)
    out = root / "run" / "model.safetensors"
    options = FinetuneOptions(epochs=2, img_size=32, batch_size=4)
    finetune("myresnet18", data, out, options=options)
    state = load_checkpoint(checkpoint_path(out))
    state.epoch = 1  # as if the run had stopped after epoch 1
    state.info["history"] = state.info["history"][:1]
    save_checkpoint(checkpoint_path(out), state)
    out.unlink()
    return data, out, options


def test_the_checkpoint_is_safetensors_with_a_json_record_and_no_pickle(one_epoch_run):
    _, out, _ = one_epoch_run
    path = checkpoint_path(out)
    assert path.name == "model.checkpoint.safetensors"
    metadata = read_metadata(path)
    document = json.loads(metadata[STATE_KEY])
    assert document["epoch"] == 1 and document["info"]["recipe"]["architecture"] == "myresnet18"
    assert set(document["rng"]) >= {"python", "numpy"} and document["info"]["sampler_epoch"] == 2
    assert document["optimizer"]["param_groups"][0]["momentum"] == 0.9
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        keys = set(handle.keys())
    assert "model/fc.weight" in keys and "rng/torch" in keys and "rng/numpy" in keys
    assert any(k.startswith("optimizer/") and k.endswith("/momentum_buffer") for k in keys)
    assert not path.read_bytes().startswith(b"PK")  # not a torch.save zip archive


def test_resume_refuses_another_architecture_class_set_or_options(one_epoch_run, tmp_path):
    data, out, options = one_epoch_run
    with pytest.raises(TrainingError, match="checkpoint of a myresnet18 fine-tune, not myresnet34"):
        finetune("myresnet34", data, out, options=options, resume=True)
    other = digit_folder(tmp_path / "other", per_class=5, labels=(2, 3))
    with pytest.raises(TrainingError, match="other classes"):
        finetune("myresnet18", other, out, options=options, resume=True)
    changed = FinetuneOptions(**{**options.__dict__, "lr": 0.1, "batch_size": 2})
    with pytest.raises(TrainingError, match=r"--batch-size 4 then, 2 now, --lr 0.05 then, 0.1 now"):
        finetune("myresnet18", data, out, options=changed, resume=True)
    assert not out.exists() and load_checkpoint(checkpoint_path(out)).epoch == 1


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(TrainingError, match="No checkpoint to resume from"):
        finetune("myresnet18", "digits", tmp_path / "new.safetensors", options=FinetuneOptions(img_size=32),
                 resume=True)


def test_a_checkpoint_left_by_an_interrupted_run_is_not_overwritten_without_resume_or_force(one_epoch_run):
    data, out, options = one_epoch_run
    before = checkpoint_path(out).read_bytes()
    with pytest.raises(TrainingError, match=r"epoch 1/2 done\); pass --resume to continue it, or --force"):
        finetune("myresnet18", data, out, options=options)
    assert checkpoint_path(out).read_bytes() == before


def test_resuming_with_another_world_size_says_what_it_will_do(one_epoch_run, tmp_path):
    data, out, options = one_epoch_run
    state = load_checkpoint(checkpoint_path(out))
    state.info["world_size"] = 2  # written by a 2-process run
    moved = tmp_path / "model.safetensors"
    save_checkpoint(checkpoint_path(moved), state)
    notes: list[str] = []
    result = finetune("myresnet18", data, moved, options=options, resume=True, on_note=notes.append)
    assert any("with 1 process(es) instead of 2: each step now takes 4 images instead of 8" in n for n in notes), notes
    assert [e.epoch for e in result.epochs] == [1, 2] and moved.exists()


def test_a_damaged_checkpoint_is_one_clear_error(tmp_path):
    out = tmp_path / "model.safetensors"
    checkpoint_path(out).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(TrainingError, match="not a readable checkpoint"):
        finetune("myresnet18", "digits", out, options=FinetuneOptions(img_size=32), resume=True)


def test_temporary_files_of_killed_processes_are_swept_and_live_ones_kept(tmp_path):
    from resnet_hub.leftovers import host_tag

    data = digit_folder(tmp_path / "data", per_class=4)
    out = tmp_path / "run" / "model.safetensors"
    out.parent.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        stale = out.parent / f".model.checkpoint.safetensors.{dead_pid}-{host_tag()}-abc123.tmp"
        busy = out.parent / f".model.safetensors.{live.pid}-{host_tag()}-def456.tmp"
        foreign = out.parent / f".model.safetensors.{dead_pid}-otherhost-ghi789.tmp"
        for path in (stale, busy, foreign):
            path.write_bytes(b"half a checkpoint")
        finetune("myresnet18", data, out, options=FinetuneOptions(epochs=1, img_size=32, batch_size=4))
        assert not stale.exists() and busy.exists() and foreign.exists()
    finally:
        live.kill()
        live.wait()
