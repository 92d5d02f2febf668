"""Test-wide settings: no test may reach the network, and Keras runs on the torch backend."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers.models import randomize_batchnorm  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def bn_randomizer():
    return randomize_batchnorm


# Enough epochs for ~97 % val top-1 on the digits at 32 px (about 20 s on 2 idle cores).
DIGITS_EPOCHS = 5


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """myresnet18 fine-tuned on the built-in digits at 32 px: a model that has learned something, so parity,
    int8 and accuracy checks on it can fail for real (a random model gives the same answer for every input)."""
    from resnet_hub.tasks.train import FinetuneOptions, finetune

    path = tmp_path_factory.mktemp("digits-model") / "myresnet18-digits.safetensors"
    result = finetune("myresnet18", "digits", path, options=FinetuneOptions(epochs=DIGITS_EPOCHS, img_size=32))
    assert result.val_top1 >= 0.9, f"the fixture model did not learn: val top-1 {result.val_top1:.1%}"
    return path
