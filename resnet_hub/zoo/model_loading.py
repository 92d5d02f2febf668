"""A model together with what its weights say about it: preprocessing, class names, provenance.

predict, evaluate and fine-tuning all need the same three facts about a set of weights, and they must agree:
which preprocessing the weights were trained with (recorded in a weights file's metadata, else the pretrained
tag's, else the variant's default), which classes the head predicts (``label_names`` recorded by fine-tuning,
ImageNet's for a 1000-class head), and where the weights came from (for records and manifests).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..weights import weights_metadata
from ..model.configs import Preprocessing
from ..errors import IncompatibleWeightsError, WeightsChoiceError
from ..weights.weights_metadata import (  # noqa: F401  (the metadata keys: fine-tuning imports them from here)
    LABEL_NAMES_KEY,
    PREPROCESSING_KEY,
    TRAINING_KEY,
    label_names_from_metadata,
    names_for_head,
)

if TYPE_CHECKING:
    from .factory import ModelRef


@dataclass
class LoadedModel:
    """A built model (eval mode) and the facts its weights carry."""

    architecture: str
    model: Any  # torch.nn.Module
    preprocessing: Preprocessing
    preprocessing_source: str
    num_classes: int
    label_names: list[str] | None
    weights: str  # 'random-init', 'pretrained:<hf_hub_id>' or the file path
    weights_sha256: str | None
    metadata: dict[str, str] = field(default_factory=dict)

    def data_config(self, img_size: int | tuple[int, int] | None = None) -> dict[str, Any]:
        """timm's evaluation data config for these weights, optionally at another input size."""
        return data_config_of(self.preprocessing, img_size)

    def labels(self) -> list[str]:
        """Names for every output index (generic 'class N' where the weights record none)."""
        return list(self.label_names) if self.label_names is not None else class_names(self.num_classes)

    @property
    def training_record(self) -> dict[str, Any] | None:
        raw = self.metadata.get(TRAINING_KEY)
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return None


def class_names(num_classes: int) -> list[str]:
    """ImageNet-1k descriptions for a 1000-class head (from timm's bundled data), else 'class N'."""
    if num_classes == 1000:
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(num_classes)]
    return [f"class {i}" for i in range(num_classes)]


def data_config_of(preprocessing: Preprocessing, img_size: int | tuple[int, int] | None = None) -> dict[str, Any]:
    from timm.data import resolve_data_config

    config = dict(resolve_data_config(pretrained_cfg=preprocessing.to_timm(), use_test_size=False))
    if img_size is not None:
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        config["input_size"] = (config["input_size"][0], int(h), int(w))
    return config


def hub_label_names(name: "str | ModelRef") -> list[str] | None:
    """The class names a published repo (``hf-hub:ORG/NAME``) records in its config.json; None for other names."""
    from .factory import _HUB_PREFIXES, ModelRef, resolve_model

    if not isinstance(name, ModelRef) and not str(name).startswith(_HUB_PREFIXES):
        return None
    ref = name if isinstance(name, ModelRef) else resolve_model(name)
    recorded = (ref.hub_config or {}).get("label_names")
    return [str(n) for n in recorded] if isinstance(recorded, list) else None


def architecture_of(path: str | os.PathLike) -> str:
    """The architecture a weights file records (every file we write records it)."""
    from ..weights.io import read_metadata

    recorded = read_metadata(path).get("architecture")
    if not recorded:
        raise IncompatibleWeightsError(f"{path} does not record its architecture; name the model too "
                                       "(e.g. `myresnet18 --weights FILE`)")
    return recorded.split(".", 1)[0]


def provenance(ref: "ModelRef", pretrained: bool) -> tuple[Preprocessing, str, str]:
    """(preprocessing, where it came from, what the weights are) for weights that are not a local file: a
    published repo's recorded preprocessing (``hf-hub:`` names), a table tag's, else the variant's default."""
    if ref.hub_config is not None:  # hf-hub:ORG/NAME or local-dir:PATH
        described = f"pretrained:{ref.name}" if pretrained else "random-init"
        return ref.preprocessing, f"{ref.name} config.json", described
    tag = ref.tag or (ref.variant.default_tag if pretrained else None)
    if tag is not None:
        return tag.preprocessing, f"pretrained tag '{tag.tag}'", (f"pretrained:{tag.hf_hub_id}" if pretrained
                                                                  else "random-init")
    return ref.variant.default_preprocessing, "variant default (random-init weights)", "random-init"


def load_model(
    name: "str | ModelRef | None",
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    device: str = "cpu",
    **model_kwargs: Any,
) -> LoadedModel:
    """Build ``name`` (or the architecture a weights file records, when ``name`` is None) in eval mode.

    A weights file sets the head size (read from the file) and its recorded preprocessing and class names;
    ``pretrained`` uses the published weights and their preprocessing (a table tag's, or an ``hf-hub:`` repo's
    config.json); neither gives random weights with the variant's default preprocessing. Export, evaluate and
    fine-tuning all load through here, so a name means the same weights and preprocessing everywhere.
    """
    from .factory import ModelRef, create_model, resolve_model

    if name is None:
        if weights is None:
            raise IncompatibleWeightsError("Name a model or pass a weights file that records its architecture")
        name = architecture_of(weights)
    WeightsChoiceError.check(weights, pretrained)
    ref = name if isinstance(name, ModelRef) else resolve_model(name)
    facts = None
    if weights is not None:
        facts = weights_metadata.read_weights_file(weights, ref.variant)  # typed errors before any model is built
        preprocessing = facts.preprocessing or ref.variant.default_preprocessing
        source = facts.preprocessing_source or "variant default (weights file records none)"
        described, sha = facts.path, facts.sha256
        label_names = facts.label_names
    else:
        preprocessing, source, described = provenance(ref, pretrained)
        sha = None
        label_names = hub_label_names(ref)  # publish writes the class names into config.json
    # create_model reads the file's head size, class names and preprocessing into the model (pretrained_cfg).
    model = create_model(ref.name, pretrained=pretrained, weights=weights, **model_kwargs).eval().to(device)
    num_classes = int(getattr(model, "num_classes", 1000))
    return LoadedModel(architecture=ref.variant.name, model=model, preprocessing=preprocessing,
                       preprocessing_source=source, num_classes=num_classes,
                       label_names=names_for_head(label_names, num_classes),
                       weights=described, weights_sha256=sha, metadata=facts.metadata if facts else {})


def at_input_size(preprocessing: Preprocessing, img_size: int) -> Preprocessing:
    """The same preprocessing at another square input size (what fine-tuning at ``--img-size`` records)."""
    return replace(preprocessing, input_size=(preprocessing.input_size[0], img_size, img_size),
                   test_input_size=None, test_crop_pct=None)
