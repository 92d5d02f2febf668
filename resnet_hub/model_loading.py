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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .configs import Preprocessing, VariantConfig
from .errors import IncompatibleWeightsError
from .metadata_checks import preprocessing_from_record

if TYPE_CHECKING:
    from .factory import ModelRef

# Metadata keys written by fine-tuning (and read back everywhere): JSON values.
LABEL_NAMES_KEY = "label_names"
PREPROCESSING_KEY = "preprocessing"
TRAINING_KEY = "training"


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
        if self.label_names is not None:
            return list(self.label_names)
        if self.num_classes == 1000:
            from timm.data import ImageNetInfo

            info = ImageNetInfo()
            return [info.index_to_description(i) for i in range(1000)]
        return [f"class {i}" for i in range(self.num_classes)]

    @property
    def training_record(self) -> dict[str, Any] | None:
        raw = self.metadata.get(TRAINING_KEY)
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return None


def data_config_of(preprocessing: Preprocessing, img_size: int | tuple[int, int] | None = None) -> dict[str, Any]:
    from timm.data import resolve_data_config

    config = dict(resolve_data_config(pretrained_cfg=preprocessing.to_timm(), use_test_size=False))
    if img_size is not None:
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        config["input_size"] = (config["input_size"][0], int(h), int(w))
    return config


def preprocessing_from_weights_metadata(
    metadata: Mapping[str, str], variant: VariantConfig, where: str = "the weights file's metadata"
) -> tuple[Preprocessing, str]:
    """The preprocessing recorded in a weights file (converters, fine-tuning, publish), else the variant's. A
    record that is there but unparseable or invalid (NaN mean, std 0, ...) raises MetadataError: it is never
    silently replaced by a default."""
    raw = metadata.get(PREPROCESSING_KEY)
    if raw:
        return preprocessing_from_record(raw, where), "weights file metadata"
    tag_name = metadata.get("pretrained_tag") or metadata.get("tag")
    if tag_name:
        try:
            return variant.tag(tag_name).preprocessing, f"pretrained tag '{tag_name}' (from weights metadata)"
        except KeyError:
            pass
    return variant.default_preprocessing, "variant default (weights file records none)"


def label_names_from_metadata(metadata: Mapping[str, str]) -> list[str] | None:
    raw = metadata.get(LABEL_NAMES_KEY)
    if not raw:
        return None
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


@dataclass(frozen=True)
class WeightsFileFacts:
    """What a local weights file says about itself, read from its header before any model is built."""

    path: str
    sha256: str
    metadata: dict[str, str]
    num_classes: int | None  # the stored classifier's size (a fine-tuned head: 10 digits, ...)
    preprocessing: Preprocessing
    preprocessing_source: str
    label_names: list[str] | None


def names_for_head(names: list[str] | None, num_classes: int) -> list[str] | None:
    """Recorded class names, if they fit a head of ``num_classes``: a record that does not is not trusted."""
    return names if names is not None and len(names) == num_classes else None


def read_weights_file(path: str | os.PathLike, variant: VariantConfig) -> WeightsFileFacts:
    """The facts of ``path`` for ``variant`` (typed errors for a missing or corrupt file), read once by
    :func:`load_model` before it builds anything."""
    from .weights import read_metadata, sha256_of_file

    metadata = read_metadata(path)
    preprocessing, source = preprocessing_from_weights_metadata(metadata, variant, f"{path} (metadata)")
    return WeightsFileFacts(path=str(Path(path)), sha256=sha256_of_file(path), metadata=metadata,
                            num_classes=head_size(path), preprocessing=preprocessing, preprocessing_source=source,
                            label_names=label_names_from_metadata(metadata))


def hub_label_names(name: "str | ModelRef") -> list[str] | None:
    """The class names a published repo (``hf-hub:ORG/NAME``) records in its config.json; None for other names."""
    from .factory import _HUB_PREFIXES, ModelRef, resolve_model

    if not isinstance(name, ModelRef) and not str(name).startswith(_HUB_PREFIXES):
        return None
    ref = name if isinstance(name, ModelRef) else resolve_model(name)
    recorded = (ref.hub_config or {}).get("label_names")
    return [str(n) for n in recorded] if isinstance(recorded, list) else None


def head_size(path: str | os.PathLike, classifier: str = "fc") -> int | None:
    """Classes of the classifier stored in a safetensors file, read from the header without loading tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        for key in (f"{classifier}.weight", "fc.weight", "head.fc.weight"):
            if key in handle.keys():
                return int(handle.get_slice(key).get_shape()[0])
    return None


def architecture_of(path: str | os.PathLike) -> str:
    """The architecture a weights file records (every file we write records it)."""
    from .weights import read_metadata

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
    if pretrained and weights is not None:
        raise IncompatibleWeightsError("Pass either --weights FILE or --pretrained, not both")
    ref = name if isinstance(name, ModelRef) else resolve_model(name)
    kwargs = dict(model_kwargs)
    facts = None
    if weights is not None:
        facts = read_weights_file(weights, ref.variant)  # before any model is built
        if facts.num_classes is not None and "num_classes" not in kwargs:
            kwargs["num_classes"] = facts.num_classes
        preprocessing, source = facts.preprocessing, facts.preprocessing_source
        described, sha = facts.path, facts.sha256
        label_names = facts.label_names
    else:
        preprocessing, source, described = provenance(ref, pretrained)
        sha = None
        label_names = hub_label_names(ref)  # publish writes the class names into config.json
    model = create_model(ref.name, pretrained=pretrained, weights=weights, **kwargs).eval().to(device)
    num_classes = int(getattr(model, "num_classes", 1000))
    return LoadedModel(architecture=ref.variant.name, model=model, preprocessing=preprocessing,
                       preprocessing_source=source, num_classes=num_classes,
                       label_names=names_for_head(label_names, num_classes),
                       weights=described, weights_sha256=sha, metadata=facts.metadata if facts else {})


def at_input_size(preprocessing: Preprocessing, img_size: int) -> Preprocessing:
    """The same preprocessing at another square input size (what fine-tuning at ``--img-size`` records)."""
    return replace(preprocessing, input_size=(preprocessing.input_size[0], img_size, img_size),
                   test_input_size=None, test_crop_pct=None)
