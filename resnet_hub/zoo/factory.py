"""``resnet_hub.create_model``: timm's factory plus local safetensors weights."""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model.configs import Preprocessing, PretrainedTag, VariantConfig, variant_names
from ..errors import WeightsChoiceError
from ..weights.lookup import HF_HUB_PREFIX, get_variant
from ..weights.weights_metadata import WeightsFileFacts, preprocessing_from_timm_cfg, read_weights_file

if TYPE_CHECKING:
    from torch import nn

# timm / torch are imported inside create_model: name resolution (resolve_model, list_models) serves
# `resnet-hub info` / `list`, which must not pay their import time.

_HUB_PREFIXES = ("hf-hub:", "local-dir:")


@dataclass(frozen=True)
class ModelRef:
    """What a model name given to any command refers to: a variant, optionally a table tag, or a published
    ``hf-hub:ORG/NAME[@rev]`` repo (with its config.json)."""

    name: str
    variant: VariantConfig
    tag: PretrainedTag | None = None
    hub_id: str | None = None
    hub_config: dict[str, Any] | None = None

    @property
    def architecture(self) -> str:
        return self.variant.name

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing of the weights this name stands for (repo record, table tag, variant default)."""
        if self.hub_config is not None:
            recorded = (self.hub_config.get("resnet_hub") or {}).get("preprocessing")
            if isinstance(recorded, dict):
                try:
                    return Preprocessing.from_json(json.dumps(recorded))
                except (TypeError, ValueError):
                    pass
            return preprocessing_from_timm_cfg(self.hub_config.get("pretrained_cfg") or {},
                                               self.variant.default_preprocessing)
        if self.tag is not None:
            return self.tag.preprocessing
        return self.variant.default_preprocessing

    @property
    def num_classes(self) -> int | None:
        if self.hub_config is not None and isinstance(self.hub_config.get("num_classes"), int):
            return int(self.hub_config["num_classes"])
        return self.tag.num_classes if self.tag is not None else None

    @property
    def weights_label(self) -> str:
        """How manifests name pretrained weights of this name."""
        if self.hub_config is not None:
            return self.name
        tag = self.tag or self.variant.default_tag
        return tag.hf_hub_id if tag is not None else "none published"


def resolve_model(name: str) -> ModelRef:
    """The one name resolution every command uses (predict, evaluate, export, info, benchmark).

    ``myresnet50`` -> the variant; ``myresnet50.tv_in1k`` -> the variant and that table tag (unknown tags
    raise ``UnknownTagError`` naming the known ones); ``hf-hub:ORG/NAME[@rev]`` -> the variant its config.json
    names, fetched through one fast-failing probe. Errors are typed (``ResNetHubError``).
    """
    variant = get_variant(name)
    if name.startswith(_HUB_PREFIXES):  # local-dir:PATH is a folder `publish --dry-run` wrote: no hub id
        from ..weights.hub import hub_model_config

        hub_id = name[len(HF_HUB_PREFIX):] if name.startswith(HF_HUB_PREFIX) else None
        return ModelRef(name=name, variant=variant, hub_id=hub_id, hub_config=hub_model_config(name))
    _, _, tag = name.partition(".")
    return ModelRef(name=name, variant=variant, tag=variant.tag(tag) if tag else None)


def list_models(pattern: str = "*") -> list[str]:
    """Registered variant names matching a shell-style pattern, in table order."""
    return [name for name in variant_names() if fnmatch.fnmatch(name, pattern)]


def create_model(
    name: str,
    pretrained: bool = False,
    weights: str | os.PathLike[str] | None = None,
    hub_org: str | None = None,
    hub_revision: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a variant (``name`` may carry a pretrained tag, ``myresnet50.tv_in1k``, or be a published repo,
    ``hf-hub:org/name[@rev]`` / ``local-dir:/path``).

    ``weights`` loads a local safetensors file after construction; its recorded architecture must match. Like
    ``local-dir:`` / ``hf-hub:`` repos, the file decides the head size (unless ``num_classes`` is given), and
    its recorded class names and preprocessing become the model's timm ``pretrained_cfg``, so
    ``timm.data.resolve_data_config(model=model)`` gives the preprocessing the weights were trained with.
    ``hub_org`` / ``hub_revision`` point pretrained downloads at a mirror organisation or pin a revision
    (defaults: ``$RESNET_HUB_ORG`` / ``$RESNET_HUB_REVISION``, else the table's repos at ``main``).
    ``device`` / ``dtype`` (in ``kwargs``) are timm's factory arguments: ``device="meta"`` builds without
    allocating weights, ``dtype=torch.bfloat16`` builds in bfloat16.
    """
    if not isinstance(name, str) or not name:
        get_variant(name)  # raises ModelArgumentError: a name is needed
    variant: VariantConfig | None = None
    if name.startswith(_HUB_PREFIXES):
        from ..weights.hub import prefetch_hub_config

        prefetch_hub_config(name)  # fail fast and clearly (timm's own lookup goes through the same seam)
    else:
        variant = get_variant(name)  # unknown names and tags fail here with suggestions rather than deep in timm
    WeightsChoiceError.check(weights, pretrained)
    if weights is not None:  # (pretrained loads are checked by the entrypoint, registry.build_variant)
        from .registry import check_factory_args

        check_factory_args(name, kwargs, loads_weights=True)  # a meta-device model cannot take the file: say so first
        kwargs = _with_file_facts(read_weights_file(weights, variant), kwargs)  # typed errors before building
    import timm  # also registers our variants, if this is the first import of timm (see resnet_hub._timm_hook)

    from ..weights.io import load_weights_into

    hub_args: dict[str, Any] = {k: v for k, v in dict(hub_org=hub_org, hub_revision=hub_revision).items()
                                if v is not None}
    model = timm.create_model(name, pretrained=pretrained, **hub_args, **kwargs)
    if weights is not None:
        architecture = None if name.startswith(_HUB_PREFIXES) else name.split(".", 1)[0]
        load_weights_into(model, weights, architecture=architecture)
    return model


def _with_file_facts(facts: WeightsFileFacts, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Model kwargs for a weights file: its head size (unless the caller chose ``num_classes``) and its
    preprocessing and class names as a ``pretrained_cfg_overlay`` (the caller's overlay keys win)."""
    kwargs = dict(kwargs)
    if facts.num_classes is not None:
        kwargs.setdefault("num_classes", facts.num_classes)
    cfg = facts.pretrained_cfg()
    if "num_classes" in kwargs and kwargs["num_classes"] != facts.num_classes:
        cfg.pop("label_names", None)  # another head than the file's: its names do not apply
        cfg["num_classes"] = kwargs["num_classes"]
    kwargs["pretrained_cfg_overlay"] = {**cfg, **(kwargs.get("pretrained_cfg_overlay") or {})}
    return kwargs
