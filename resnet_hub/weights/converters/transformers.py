"""Hugging Face transformers ``ResNetForImageClassification`` / ``ResNetModel`` -> ours.

transformers names modules by role (``embedder.embedder.convolution``, ``encoder.stages.S.layers.B.layer.K``,
``shortcut``, ``classifier.1``); ours follow torchvision. Its ResNets are v1.5 (stride on the 3x3) unless
``downsample_in_bottleneck`` is set, and never downsample in the first stage by default; configs that
differ from our variants are refused rather than converted into a silently different network.

Input: a model folder (config.json + model.safetensors or pytorch_model.bin) or a single weights file.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from ...model.configs import TV1
from ..lookup import get_variant
from ...errors import ConversionError
from .common import ConvertedWeights, finish, read_torch_checkpoint, require_file

SOURCE_FORMAT = "transformers"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_NORM = {"weight": "weight", "bias": "bias", "running_mean": "running_mean", "running_var": "running_var",
         "num_batches_tracked": "num_batches_tracked"}
_STEM = re.compile(r"^embedder\.embedder\.(convolution|normalization)\.(\w+)$")
_SHORTCUT = re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.(convolution|normalization)\.(\w+)$")
_LAYER = re.compile(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.(convolution|normalization)\.(\w+)$")


def read_source(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict, Path]:
    """(state dict, config or {}, weights file) from a model folder or a single file."""
    path = require_file(path, folder_ok=True)
    config: dict = {}
    if path.is_dir():
        weights = next((path / f for f in _WEIGHT_FILES if (path / f).is_file()), None)
        if weights is None:
            raise ConversionError(f"{path} holds neither {' nor '.join(_WEIGHT_FILES)}.")
        if (path / "config.json").is_file():
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    else:
        weights = path
        sibling = path.parent / "config.json"
        if sibling.is_file():
            config = json.loads(sibling.read_text(encoding="utf-8"))
    return read_torch_checkpoint(weights), config, weights


def _check_config(config: dict, variant_name: str) -> None:
    if not config:
        return
    if config.get("model_type", "resnet") != "resnet":
        raise ConversionError(f"config.json describes a '{config.get('model_type')}' model, not a transformers ResNet.")
    problems = []
    if config.get("downsample_in_bottleneck"):
        problems.append("downsample_in_bottleneck=True (stride on the 1x1 conv)")
    if config.get("downsample_in_first_stage"):
        problems.append("downsample_in_first_stage=True")
    if config.get("hidden_act", "relu") != "relu":
        problems.append(f"hidden_act={config.get('hidden_act')}")
    if config.get("embedding_size", 64) != 64:
        problems.append(f"embedding_size={config.get('embedding_size')}")
    if problems:
        raise ConversionError(f"This transformers ResNet differs from {variant_name}: {', '.join(problems)}.")


def transformers_to_ours(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename every key; anything unrecognised is an error listing the keys."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        name = key[len("resnet."):] if key.startswith("resnet.") else key
        if name.startswith("classifier.1."):
            out["fc." + name[len("classifier.1."):]] = value
        elif match := _STEM.match(name):
            out[("conv1." if match[1] == "convolution" else "bn1.") + match[2]] = value
        elif match := _SHORTCUT.match(name):
            stage, block, part, param = match.groups()
            out[f"layer{int(stage) + 1}.{block}.downsample.{0 if part == 'convolution' else 1}.{param}"] = value
        elif match := _LAYER.match(name):
            stage, block, index, part, param = match.groups()
            layer = int(index) + 1
            out[f"layer{int(stage) + 1}.{block}.{'conv' if part == 'convolution' else 'bn'}{layer}.{param}"] = value
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" (+{len(unknown) - 8} more)" if len(unknown) > 8 else "")
        raise ConversionError(f"{len(unknown)} key(s) are not part of a transformers ResNet: {shown}.")
    return out


def _architecture(state_dict: dict[str, torch.Tensor]) -> tuple[str, tuple[int, ...]]:
    depths = [0, 0, 0, 0]
    block = "basic"
    for key in state_dict:
        match = re.match(r"^layer(\d)\.(\d+)\.conv(\d)\.", key)
        if match:
            stage = int(match[1]) - 1
            if not 0 <= stage < 4:
                continue
            depths[stage] = max(depths[stage], int(match[2]) + 1)
            if match[3] == "3":
                block = "bottleneck"
    return block, tuple(depths)


def convert(path: str | os.PathLike, model: str) -> ConvertedWeights:
    """Convert a transformers ResNet for ``model`` (``myresnet18/34/50/101/152``)."""
    variant = get_variant(model)
    state_dict, config, _weights_file = read_source(path)
    _check_config(config, variant.name)
    ours = transformers_to_ours(state_dict)
    block, depths = _architecture(ours)
    if variant.family != "resnet" or (block, depths) != (variant.block, tuple(variant.layers)) or (
        variant.stride_in_1x1 or variant.deep_stem or variant.cardinality != 1 or variant.base_width != 64 or variant.se
    ):
        raise ConversionError(
            f"{path} holds a transformers ResNet with {block} blocks and stage depths {depths}, which is not "
            f"{variant.name}. Choose one of: myresnet18, myresnet34 (basic), myresnet50, myresnet101, myresnet152."
        )
    # microsoft/resnet-* processors: resize 256 (crop_pct 0.875), ImageNet mean/std, bilinear.
    return finish(ours, variant.name, SOURCE_FORMAT, Path(path), TV1, ["renamed transformers ResNet keys"])
