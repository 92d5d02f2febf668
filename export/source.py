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

from resnet_hub.configs import Preprocessing, VariantConfig

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
        from resnet_hub.model_loading import data_config_of

        return data_config_of(self.preprocessing, img_size)


def load_model_source(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    **model_kwargs: Any,
) -> ModelSource:
    """Build ``name`` in eval mode with its weights (a local safetensors file, the Hub, or random init)."""
    import resnet_hub
    from resnet_hub.errors import UnknownTagError
    from resnet_hub.factory import resolve_model
    from resnet_hub.model_loading import read_weights_file

    try:
        ref = resolve_model(name)  # unknown names, tags and hf-hub repos fail here, before any file is touched
    except UnknownTagError as exc:
        raise ExportOptionError(str(exc)) from exc
    variant = ref.variant
    if pretrained and weights is not None:
        raise ExportOptionError("Pass either --weights FILE or --pretrained, not both")
    facts = read_weights_file(weights, variant) if weights is not None else None  # before building anything
    if facts is not None and facts.num_classes is not None and "num_classes" not in model_kwargs:
        model_kwargs["num_classes"] = facts.num_classes  # a fine-tuned head (10 digits, ...) at its own size
    model = resnet_hub.create_model(name, pretrained=pretrained, weights=weights, **model_kwargs).eval()

    file_sha = None
    if facts is not None:
        file_sha, described = facts.sha256, facts.path
        preprocessing, source = facts.preprocessing, facts.preprocessing_source
    elif ref.hub_id is not None:
        preprocessing, source = ref.preprocessing, f"hf-hub:{ref.hub_id} config.json"
        described = f"pretrained:hf-hub:{ref.hub_id}" if pretrained else "random-init"
    elif pretrained or ref.tag is not None:
        tag = ref.tag or variant.default_tag
        if tag is None:
            raise ExportOptionError(f"{variant.name} has no published weights; export with --weights FILE")
        preprocessing, source = tag.preprocessing, f"pretrained tag '{tag.tag}'"
        described = f"pretrained:{tag.hf_hub_id}" if pretrained else "random-init"
    else:
        preprocessing, source = variant.default_preprocessing, "variant default (random-init weights)"
        described = "random-init"
    return ModelSource(
        name=name,
        variant=variant,
        model=model,
        weights=described,
        weights_file_sha256=file_sha,
        state_dict_sha256=state_dict_sha256(model),
        preprocessing=preprocessing,
        preprocessing_source=source,
        num_classes=int(getattr(model, "num_classes", 1000)),
        label_names=facts.label_names_for(int(getattr(model, "num_classes", 1000))) if facts else None,
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
