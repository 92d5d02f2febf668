"""Which model is exported, with which weights, and which preprocessing those weights expect.

Everything an exported artifact must carry about its origin is gathered here once, so the ONNX manifest,
the TensorRT manifest and the Triton README all state the same weights hash and the same preprocessing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from resnet_hub.model.configs import Preprocessing, VariantConfig

from .errors import ExportOptionError


@dataclass(frozen=True)
class ModelSource:
    """A model ready for export plus the facts the manifest records about it."""

    name: str
    variant: VariantConfig
    model: nn.Module
    weights: str  # 'random-init', 'pretrained:<hf_hub_id>' or the safetensors path
    weights_file_sha256: str | None
    state_dict_sha256: str
    preprocessing: Preprocessing
    preprocessing_source: str
    num_classes: int
    label_names: list[str] | None = None  # recorded by fine-tuning; None: ImageNet or unnamed classes

    def data_config(self, img_size: tuple[int, int] | None = None) -> dict[str, Any]:
        """timm data config (input_size, interpolation, mean, std, crop_pct, crop_mode) for this export."""
        from resnet_hub.zoo.model_loading import data_config_of

        return data_config_of(self.preprocessing, img_size)


def load_model_source(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    **model_kwargs: Any,
) -> ModelSource:
    """Build ``name`` in eval mode with its weights (a local safetensors file, the Hub, or random init), loaded
    as evaluate and fine-tuning load it (:func:`resnet_hub.zoo.model_loading.load_model`), plus the state-dict hash."""
    from resnet_hub.errors import UnknownTagError, WeightsChoiceError
    from resnet_hub.zoo.factory import resolve_model
    from resnet_hub.zoo.model_loading import load_model

    try:
        ref = resolve_model(name)  # unknown names, tags and hf-hub repos fail here, before any file is touched
    except UnknownTagError as exc:
        raise ExportOptionError(str(exc)) from exc
    WeightsChoiceError.check(weights, pretrained)
    if pretrained and ref.hub_id is None and (ref.tag or ref.variant.default_tag) is None:
        raise ExportOptionError(f"{ref.variant.name} has no published weights; export with --weights FILE")
    loaded = load_model(ref, weights=weights, pretrained=pretrained, **model_kwargs)
    return ModelSource(
        name=name,
        variant=ref.variant,
        model=loaded.model,
        weights=loaded.weights,
        weights_file_sha256=loaded.weights_sha256,
        state_dict_sha256=state_dict_sha256(loaded.model),
        preprocessing=loaded.preprocessing,
        preprocessing_source=loaded.preprocessing_source,
        num_classes=loaded.num_classes,
        label_names=loaded.label_names,
    )


def state_dict_sha256(model: nn.Module) -> str:
    """A content hash of the tensors actually exported, whatever file (or none) they came from."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()


def preprocessing_dict(source: ModelSource, img_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """What a client must do to an image before sending it, for manifests and READMEs."""
    cfg = source.data_config(img_size)
    return dict(
        style=source.preprocessing.style,
        source=source.preprocessing_source,
        input_size=list(cfg["input_size"]),
        interpolation=cfg["interpolation"],
        crop_pct=cfg["crop_pct"],
        crop_mode=cfg.get("crop_mode", "center"),
        mean=list(cfg["mean"]),
        std=list(cfg["std"]),
        pixel_range="RGB, scaled to [0, 1] before (x - mean) / std",
        layout="NCHW",
        table=asdict(source.preprocessing),
    )


def torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")
