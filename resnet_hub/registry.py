"""Registers every variant of the table with timm.

timm has no plugin discovery: ``register_model`` must run when ``resnet_hub`` is imported, and it reads
``default_cfgs`` from this module, so that dict is built (from the table) before the entrypoints are.
"""

from __future__ import annotations

from typing import Any, Callable

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from .configs import VARIANTS, PretrainedTag, VariantConfig
from .converters import timm_resnetv2
from .resnet import ResNet
from .resnetv2 import ResNetV2

__all__: list[str] = []


def pretrained_cfg_for(variant: VariantConfig, tag: PretrainedTag | None) -> dict[str, Any]:
    """timm ``pretrained_cfg`` of one weight set (or of the untrained variant when ``tag`` is None)."""
    preprocessing = tag.preprocessing if tag else variant.default_preprocessing
    cfg: dict[str, Any] = dict(
        num_classes=tag.num_classes if tag else 1000,
        pool_size=(7, 7),
        first_conv=variant.first_conv,
        classifier="fc",
        **preprocessing.to_timm(),
    )
    if tag is not None:
        cfg.update(hf_hub_id=tag.hf_hub_id, license=tag.license, origin_url=tag.origin, notes=(tag.description,))
    return cfg


def _default_cfgs() -> dict:
    cfgs: dict[str, dict] = {}
    for variant in VARIANTS.values():
        if not variant.pretrained:
            cfgs[variant.name] = pretrained_cfg_for(variant, None)
        for tag in variant.pretrained:
            cfgs[f"{variant.name}.{tag.tag}"] = pretrained_cfg_for(variant, tag)
    return generate_default_cfgs(cfgs)


default_cfgs = _default_cfgs()


def build_variant(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``name`` through timm's builder, which brings pretrained loading, ``features_only``,
    ``num_classes`` / ``in_chans`` adaptation of loaded weights, and ``pretrained_cfg`` bookkeeping."""
    variant = VARIANTS[name]
    model_cls = ResNetV2 if variant.family == "resnetv2" else ResNet
    model_args = dict(variant.model_args(), model_name=name)
    model_args.update(kwargs)
    from .hub import prepare_pretrained  # local import: hub pulls in huggingface_hub lazily

    # Always called: it also strips hub_org / hub_revision, which the model classes do not take.
    model_args = prepare_pretrained(variant, model_args, pretrained=pretrained)
    return build_model_with_cfg(
        model_cls,
        name,
        pretrained,
        pretrained_filter_fn=timm_resnetv2.pretrained_filter,
        **model_args,
    )


def _make_entrypoint(variant: VariantConfig) -> Callable[..., nn.Module]:
    def entrypoint(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return build_variant(variant.name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = variant.name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = describe(variant)
    return entrypoint


def describe(variant: VariantConfig) -> str:
    """Docstring of an entrypoint (shown by ``torch.hub.help`` and ``help()``)."""
    tags = ", ".join(t.tag for t in variant.pretrained) or "none published (convert your own)"
    peers = [f"{lib}: {peer}" for lib, peer in (("timm", variant.timm_name), ("torchvision", variant.torchvision_name),
                                                  ("Keras", variant.keras_name)) if peer]
    return (
        f"{variant.description}.\n\n"
        f"Pretrained tags: {tags}.\n"
        + (f"Checkpoint-compatible with {'; '.join(peers)}.\n" if peers else "")
        + "\nArgs:\n"
        "    pretrained: load the default pretrained weights (safetensors from the Hugging Face Hub).\n"
        "    **kwargs: num_classes, in_chans, global_pool, drop_rate, drop_path_rate, zero_init_last,\n"
        "        features_only, out_indices, ... as in timm.create_model.\n"
    )


for _variant in VARIANTS.values():
    globals()[_variant.name] = register_model(_make_entrypoint(_variant))
