"""The precomputed parameter / MAC counts (what `resnet-hub list` and `info` show) equal the measured ones."""

from __future__ import annotations

import pytest

from resnet_hub.model._variant_counts import COUNTS, COUNTS_IMG_SIZE
from resnet_hub.model.configs import variant_names
from resnet_hub.zoo.stats import measure_stats, model_stats


def test_the_counts_table_covers_exactly_the_variant_table():
    assert list(COUNTS) == variant_names(), "run: python -m resnet_hub.zoo.stats --write"
    assert COUNTS_IMG_SIZE == 224


@pytest.mark.parametrize("name", variant_names())
def test_precomputed_counts_equal_the_measured_ones(name):
    measured = measure_stats(name, COUNTS_IMG_SIZE)
    assert model_stats(name) == measured, f"{name}: run python -m resnet_hub.zoo.stats --write"


def test_known_counts_match_the_published_ones():
    # torchvision's model cards: ResNet-50 25,557,032 params, 4.09 GFLOPS (MACs); ResNet-18 11,689,512, 1.81.
    assert model_stats("myresnet50").params == 25_557_032 and round(model_stats("myresnet50").gmacs, 2) == 4.09
    assert model_stats("myresnet18").params == 11_689_512 and round(model_stats("myresnet18").gmacs, 2) == 1.81


def test_other_image_sizes_are_measured():
    small = model_stats("myresnet18", 64)
    assert small == measure_stats("myresnet18", 64)
    assert small.params == model_stats("myresnet18").params and small.macs < model_stats("myresnet18").macs
