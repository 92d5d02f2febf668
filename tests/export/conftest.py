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
def digits_resnet18(tmp_path_factory):
    """myresnet18 fine-tuned on the built-in digits at 32 px (3 epochs of batch 32: 95 % val top-1), a model
    that has learned something, so int8 and embedded-preprocessing checks are made on real decisions."""
    from resnet_hub.train import FinetuneOptions, finetune

    path = tmp_path_factory.mktemp("digits") / "digits-r18.safetensors"
    result = finetune("myresnet18", "digits", path, options=FinetuneOptions(epochs=3, img_size=32, seed=0,
                                                                               batch_size=32))
    assert result.val_top1 > 0.85, result.val_top1  # it must have learned, or the checks below mean nothing
    return path
