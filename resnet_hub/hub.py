"""Pretrained weights from the Hugging Face Hub (filled in by the weights issue)."""

from __future__ import annotations

from typing import Any

from .configs import VariantConfig


def prepare_pretrained(variant: VariantConfig, model_args: dict[str, Any]) -> dict[str, Any]:
    return model_args
