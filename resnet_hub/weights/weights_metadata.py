"""What a weights file records about itself: head size, class names, preprocessing, provenance.

Read from the safetensors header (no tensor is loaded, torch is not needed), before any model is built, by
every loader: ``create_model(name, weights=FILE)`` (which puts these facts into the model's timm
``pretrained_cfg``) and ``model_loading.load_model`` (which every command uses). One reader, so a file means
the same model everywhere.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from ..model.configs import Preprocessing, VariantConfig
from .metadata_checks import check_preprocessing, preprocessing_from_record

# Metadata keys written by fine-tuning, converters and publish (and read back everywhere): JSON values.
LABEL_NAMES_KEY = "label_names"
PREPROCESSING_KEY = "preprocessing"
TRAINING_KEY = "training"
# timm's pretrained_cfg vocabulary for preprocessing (a file or a repo may record it in that form).
TIMM_PREPROCESSING_KEYS = ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std")


def preprocessing_from_timm_cfg(cfg: Mapping[str, Any], base: Preprocessing) -> Preprocessing:
    """``base`` with the preprocessing fields a timm ``pretrained_cfg`` records (JSON lists become tuples)."""
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()
                              if k in TIMM_PREPROCESSING_KEYS}
    try:
        return replace(base, **fields)
    except TypeError:
        return base


def recorded_preprocessing(
    metadata: Mapping[str, str], variant: VariantConfig | None, where: str = "the weights file's metadata"
) -> tuple[Preprocessing, str] | None:
    """The preprocessing a weights file records (``preprocessing`` JSON, a timm ``pretrained_cfg`` JSON, or the
    table tag it came from), with where it came from; None when it records none. A record that is there but
    unparseable or invalid (NaN mean, std 0, an unknown interpolation) raises MetadataError: it is never silently
    replaced by a default."""
    raw = metadata.get(PREPROCESSING_KEY)
    if raw:
        return preprocessing_from_record(raw, where), "weights file metadata"
    raw_cfg = metadata.get("pretrained_cfg")
    if raw_cfg and variant is not None:
        try:
            cfg = json.loads(raw_cfg)
        except json.JSONDecodeError:
            cfg = None
        if isinstance(cfg, dict) and any(k in cfg for k in TIMM_PREPROCESSING_KEYS):
            check_preprocessing(cfg, where)
            return preprocessing_from_timm_cfg(cfg, variant.default_preprocessing), "weights file pretrained_cfg"
    tag_name = metadata.get("pretrained_tag") or metadata.get("tag")
    if tag_name and variant is not None:
        try:
            return variant.tag(tag_name).preprocessing, f"pretrained tag '{tag_name}' (from weights metadata)"
        except KeyError:
            pass
    return None


def preprocessing_from_weights_metadata(
    metadata: Mapping[str, str], variant: VariantConfig
) -> tuple[Preprocessing, str]:
    """The preprocessing recorded in a weights file (converters, fine-tuning, publish), else the variant's."""
    return (recorded_preprocessing(metadata, variant)
            or (variant.default_preprocessing, "variant default (weights file records none)"))


def label_names_from_metadata(metadata: Mapping[str, str]) -> list[str] | None:
    raw = metadata.get(LABEL_NAMES_KEY)
    if not raw:
        return None
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def names_for_head(names: list[str] | None, num_classes: int) -> list[str] | None:
    """Recorded class names, if they fit a head of ``num_classes``: a record that does not is not trusted."""
    return names if names is not None and len(names) == num_classes else None


def head_size(path: str | os.PathLike, classifier: str = "fc") -> int | None:
    """Classes of the classifier stored in a safetensors file, read from the header without loading tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        for key in (f"{classifier}.weight", "fc.weight", "head.fc.weight"):
            if key in handle.keys():
                return int(handle.get_slice(key).get_shape()[0])
    return None


@dataclass(frozen=True)
class WeightsFileFacts:
    """What a local weights file says about itself, read from its header before any model is built."""

    path: str
    metadata: dict[str, str]
    num_classes: int | None  # the stored classifier's size (a fine-tuned head: 10 digits, ...)
    preprocessing: Preprocessing | None  # None: the file records none (the caller's default applies)
    preprocessing_source: str | None
    label_names: list[str] | None

    @functools.cached_property
    def sha256(self) -> str:
        """Hashed on first use only: ``create_model`` does not need it, records and manifests do."""
        from .io import sha256_of_file

        return sha256_of_file(self.path)

    def pretrained_cfg(self) -> dict[str, Any]:
        """The part of a timm ``pretrained_cfg`` this file decides: what ``resolve_data_config(model=model)``
        and ``model.pretrained_cfg['label_names']`` then report for a model built from it."""
        cfg: dict[str, Any] = {}
        if self.preprocessing is not None:
            cfg.update(self.preprocessing.to_timm())
        if self.num_classes is not None:
            cfg["num_classes"] = self.num_classes
            names = names_for_head(self.label_names, self.num_classes)
            if names is not None:
                cfg["label_names"] = names
        return cfg


def read_weights_file(path: str | os.PathLike, variant: VariantConfig | None) -> WeightsFileFacts:
    """The facts of ``path`` (typed errors for a missing or corrupt file); ``variant`` resolves a recorded
    pretrained tag (None: only what the file records in full)."""
    from .io import read_metadata

    metadata = read_metadata(path)
    recorded = recorded_preprocessing(metadata, variant, f"{path} (metadata)")
    return WeightsFileFacts(path=str(Path(path)), metadata=metadata, num_classes=head_size(path),
                            preprocessing=recorded[0] if recorded else None,
                            preprocessing_source=recorded[1] if recorded else None,
                            label_names=label_names_from_metadata(metadata))
