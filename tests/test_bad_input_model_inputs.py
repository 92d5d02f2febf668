"""Wrong inputs fail early with a message that says how to fix them."""

from __future__ import annotations

import pytest
import torch

import resnet_hub
from resnet_hub.errors import InputShapeError, UnknownModelError


@pytest.fixture(scope="module")
def model():
    return resnet_hub.create_model("myresnet18").eval()


def test_three_dimensional_input_suggests_adding_a_batch_dimension(model):
    with pytest.raises(InputShapeError, match=r"4-D tensor.*unsqueeze\(0\)"):
        model(torch.randn(3, 64, 64))


def test_wrong_channel_count_suggests_in_chans(model):
    with pytest.raises(InputShapeError, match="expects 3 input channels; got 1.*in_chans=1"):
        model(torch.randn(2, 1, 64, 64))


def test_channels_last_numpy_style_input_is_recognised(model):
    with pytest.raises(InputShapeError, match=r"permute\(0, 3, 1, 2\)"):
        model(torch.randn(2, 64, 64, 3))


def test_input_errors_are_value_errors_for_generic_handlers(model):
    with pytest.raises(ValueError):
        model(torch.randn(64, 64))


def test_unknown_model_name_suggests_close_matches():
    with pytest.raises(UnknownModelError, match="Did you mean: myresnet50"):
        resnet_hub.create_model("myresnet05")
