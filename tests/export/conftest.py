"""Fixtures for the export tests (helpers live in export_helpers.py so test modules can import them)."""

from __future__ import annotations

import pytest
from export_helpers import make_logits_meaningful

from resnet_hub.export.source import ModelSource, load_model_source, state_dict_sha256


@pytest.fixture
def source_for(bn_randomizer):
    """Build a variant as the export would, with meaningful logits."""

    def build(name: str, seed: int = 0) -> ModelSource:
        source = load_model_source(name)
        make_logits_meaningful(source.model, bn_randomizer, seed)
        return ModelSource(**{**source.__dict__, "state_dict_sha256": state_dict_sha256(source.model)})

    return build


@pytest.fixture(scope="session")
def digits_resnet18(digits_model):
    """myresnet18 fine-tuned on the built-in digits at 32 px: the test-wide ``digits_model``, under the name the
    export tests were written with (one fine-tune per run, not two)."""
    return digits_model
