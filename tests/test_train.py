"""Fine-tuning: learns from real images, records what later steps need, is reproducible, and refuses bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import resnet_hub
from resnet_hub.model.configs import IMAGENET_MEAN
from resnet_hub.errors import DatasetError, TrainingError
from resnet_hub.tasks.train import FinetuneOptions, finetune
from resnet_hub.weights.io import read_metadata, sha256_of_file


def test_the_digits_model_learned_and_records_everything_downstream_needs(digits_model):
    metadata = read_metadata(digits_model)
    assert metadata["architecture"] == "myresnet18"
    assert json.loads(metadata["label_names"]) == [str(i) for i in range(10)]
    preprocessing = json.loads(metadata["preprocessing"])
    assert preprocessing["input_size"] == [3, 32, 32] and preprocessing["mean"] == list(IMAGENET_MEAN)
    record = json.loads(metadata["training"])
    assert record["data"]["train"]["source"] == "digits" and record["epochs"] >= 1
    assert record["val_top1"] >= 0.9 and record["history"][-1]["val_top1"] == record["val_top1"]
    assert record["base_weights"] == "random-init"
    model = resnet_hub.create_model("myresnet18", weights=digits_model, num_classes=10).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        predictions = model(x).argmax(1)
    assert model.num_classes == 10 and predictions.shape == (4,)


def _digit_folder(root, per_class=6):
    """Real digit images written as PNG files in ImageFolder layout (exercises the folder path end to end)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in (0, 1, 7):
        folder = root / f"digit{label}"
        folder.mkdir(parents=True)
        indices = np.flatnonzero(digits.target == label)[:per_class]
        for i in indices:
            Image.fromarray(np.uint8(digits.images[i] * 255 / 16)).save(folder / f"{i}.png")
    return root


def _quick(**overrides) -> FinetuneOptions:
    return FinetuneOptions(**{**dict(epochs=1, img_size=32, batch_size=8), **overrides})


def test_same_seed_gives_the_same_weights_and_another_seed_does_not(tmp_path):
    data = _digit_folder(tmp_path / "data")
    a = finetune("myresnet18", data, tmp_path / "a.safetensors", options=_quick(seed=7))
    b = finetune("myresnet18", data, tmp_path / "b.safetensors", options=_quick(seed=7))
    c = finetune("myresnet18", data, tmp_path / "c.safetensors", options=_quick(seed=8))
    load = resnet_hub.load_weights
    weights_a, weights_b, weights_c = (load(p)[0] for p in (a.output, b.output, c.output))
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert not all(torch.equal(weights_a[k], weights_c[k]) for k in weights_a)
    assert a.classes == ["digit0", "digit1", "digit7"]


def test_starts_from_weights_with_another_head_and_keeps_the_backbone(tmp_path, digits_model):
    data = _digit_folder(tmp_path / "data")
    result = finetune("myresnet18", data, tmp_path / "three.safetensors", weights=digits_model,
                      options=_quick(lr=1e-9, warmup_epochs=0))
    assert json.loads(read_metadata(result.output)["training"])["base_weights_sha256"] == sha256_of_file(digits_model)
    before, after = resnet_hub.load_weights(digits_model)[0], resnet_hub.load_weights(result.output)[0]
    assert after["fc.weight"].shape == (3, 512) and before["fc.weight"].shape == (10, 512)
    # lr ~ 0: the backbone is the file's (BatchNorm statistics still move in train mode, convolutions do not)
    assert torch.allclose(before["layer4.1.conv2.weight"], after["layer4.1.conv2.weight"], atol=1e-6)


def test_unreadable_files_are_skipped_with_their_reason(tmp_path):
    data = _digit_folder(tmp_path / "data")
    (data / "digit1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (data / "digit1" / "notes.txt").write_text("ignored: not an image suffix")
    result = finetune("myresnet18", data, tmp_path / "out.safetensors", options=_quick())
    assert any(path.endswith("broken.png") for path in result.skipped)
    assert any(path.endswith("notes.txt") for path in result.ignored)


def test_existing_output_is_kept_and_bad_options_fail_before_training(tmp_path):
    data = _digit_folder(tmp_path / "data")
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    with pytest.raises(TrainingError, match="--force"):
        finetune("myresnet18", data, out, options=_quick())
    assert out.read_bytes() == b"precious"
    with pytest.raises(TrainingError, match="--img-size"):
        finetune("myresnet18", data, tmp_path / "x.safetensors", options=_quick(img_size=16))
    with pytest.raises(TrainingError, match=".safetensors"):
        finetune("myresnet18", data, tmp_path / "x.pth", options=_quick())
    with pytest.raises(DatasetError):
        finetune("myresnet18", tmp_path / "missing", tmp_path / "x.safetensors", options=_quick())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out.safetensors"]


def test_a_last_batch_of_one_image_does_not_crash_batchnorm(tmp_path):
    from train_helpers import digit_folder

    data = digit_folder(tmp_path / "data", per_class=4, split="train")  # 12 training images
    digit_folder(tmp_path / "data", per_class=2, split="val", start=10)
    result = finetune("myresnet18", data, tmp_path / "out.safetensors", options=_quick(batch_size=11))
    assert result.record["run"]["images"] == 11  # the lone 12th image of the epoch is left out, not crashed on
    assert result.output.exists()


@pytest.mark.parametrize("case", ["parent is a file", "output is a folder", "virtual file system"])
def test_an_output_that_cannot_be_written_fails_before_training(tmp_path, case):
    from resnet_hub.errors import OutputPathError

    data = _digit_folder(tmp_path / "data")
    if case == "parent is a file":
        (tmp_path / "file").write_text("x")
        out, error, message = tmp_path / "file" / "out.safetensors", OutputPathError, "is a file, not a folder"
    elif case == "output is a folder":
        out, error, message = tmp_path / "dir.safetensors", TrainingError, "is a folder"
        out.mkdir()
    else:
        out, error, message = __import__("pathlib").Path("/proc/self/out.safetensors"), OutputPathError, "Cannot write"
    steps = []
    with pytest.raises(error, match=message):
        finetune("myresnet18", data, out, options=_quick(), on_step=steps.append)
    assert steps == []  # refused before the first training step


def test_more_workers_than_cpus_is_refused_with_the_count(tmp_path):
    from resnet_hub.tasks.train import usable_cpus

    with pytest.raises(TrainingError, match=f"use {usable_cpus()} CPU"):
        finetune("myresnet18", "digits", tmp_path / "x.safetensors", options=_quick(workers=usable_cpus() + 1))
    assert list(tmp_path.iterdir()) == []


def test_worker_processes_give_the_same_weights_as_decoding_in_process(tmp_path):
    data = _digit_folder(tmp_path / "data")
    a = finetune("myresnet18", data, tmp_path / "a.safetensors", options=_quick(workers=0))
    b = finetune("myresnet18", data, tmp_path / "b.safetensors", options=_quick(workers=2))
    weights_a, weights_b = resnet_hub.load_weights(a.output)[0], resnet_hub.load_weights(b.output)[0]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert json.loads(read_metadata(b.output)["training"])["run"]["workers"] == 2


def test_the_training_record_and_model_card_say_how_the_run_ran(tmp_path):
    from resnet_hub.tasks.publish import build_hub_folder

    data = _digit_folder(tmp_path / "data")
    result = finetune("myresnet18", data, tmp_path / "out.safetensors", options=_quick(epochs=2))
    run = json.loads(read_metadata(result.output)["training"])["run"]
    assert run["engine"] == "local" and run["world_size"] == 1 and run["device"] == "cpu"
    assert run["images"] == 2 * result.record["data"]["train"]["n"] and run["throughput_img_s"] > 0
    assert run["wall_seconds"] >= run["train_seconds"] > 0 and run["precision"] == "fp32"
    build_hub_folder("myresnet18", result.output, tmp_path / "hub", "me/digits")
    card = (tmp_path / "hub" / "README.md").read_text()
    assert f"trained on 1 process(es) (local, cpu, {run['throughput_img_s']} img/s" in card, card


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")
@pytest.mark.parametrize("compile_model", [False, True])
def test_cuda_training_runs_mixed_precision_channels_last_and_records_it(tmp_path, compile_model):
    data = _digit_folder(tmp_path / "data")
    result = finetune("myresnet18", data, tmp_path / "out.safetensors",
                      options=_quick(device="cuda", epochs=2, compile=compile_model))
    run = result.record["run"]
    assert run["device"] == "cuda" and run["channels_last"] and run["compiled"] == compile_model
    assert run["precision"] in ("bfloat16", "float16")
    weights = resnet_hub.load_weights(result.output)[0]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
