"""Test-wide settings: no test may reach the network, and Keras runs on the torch backend."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from model_helpers import randomize_batchnorm  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def bn_randomizer():
    return randomize_batchnorm
