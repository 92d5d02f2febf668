"""One validation of what weights say about themselves: preprocessing, architecture, head size, class names.

A Hub repo's ``config.json`` and a safetensors header's metadata are untrusted input that reaches our loader,
timm's (``local-dir:`` / ``hf-hub:``) and transformers'. Left unchecked, ``num_classes: 50000000`` makes the
builder allocate 100 GB before anything looks at it, a NaN ``mean`` turns every prediction into garbage without
an error, and an ``architecture`` that contradicts the weights ends in a raw size-mismatch traceback. Every such
record is checked here, against the safetensors header's tensor shapes where there is a file (read from the
header alone: no tensor is loaded and torch is not imported), and refused with one :class:`MetadataError` line.

Callers: ``hub`` (config.json of ``hf-hub:`` / ``local-dir:`` repos, on our routes and behind timm's seam),
``registry.build_variant`` (the builder: head size and a given ``pretrained_cfg``, before allocating anything,
which is what protects transformers' route too) and ``model_loading`` (a weights file's recorded preprocessing).
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..model.configs import VARIANTS, Preprocessing
from ..errors import CorruptWeightsError, MetadataError

# No real dataset has more classes (ImageNet-22k has 21,843; the largest public label sets stay below 100k), and a
# 2048-feature head of 100,000 classes is already 0.8 GB of float32: a larger head is refused before it is built.
MAX_NUM_CLASSES = 100_000
# Input sides: timm's largest pretrained image sizes are around 1,000 px; 8192 leaves room without letting
# a record ask for a multi-gigabyte input tensor per image.
MAX_IMAGE_SIDE = 8192
MAX_CHANNELS = 16
# timm's interpolation names (timm.data.transforms: PIL / torchvision modes) and its eval crop modes.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos", "random")
CROP_MODES = ("center", "squash", "border")
# safetensors itself refuses headers above 100 MB.
MAX_HEADER_BYTES = 100_000_000


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_num_classes(value: Any, where: str) -> int:
    """A head size a real dataset can have: a whole number in 0..MAX_NUM_CLASSES (0 = no classifier)."""
    if not _is_int(value) or value < 0:
        raise MetadataError(f"{where}: num_classes must be a whole number >= 0; got {value!r}.")
    if value > MAX_NUM_CLASSES:
        raise MetadataError(f"{where}: num_classes {value:,} is more than any real dataset has (the limit is "
                            f"{MAX_NUM_CLASSES:,}); refusing to build a head that large. The record is corrupt or "
                            "hostile: check num_classes in config.json / the weights' metadata.")
    return value


def _check_size(value: Any, key: str, where: str) -> tuple[int, int, int]:
    ok = (isinstance(value, (list, tuple)) and len(value) == 3 and all(_is_int(v) for v in value)
          and 1 <= value[0] <= MAX_CHANNELS and all(1 <= v <= MAX_IMAGE_SIDE for v in value[1:]))
    if not ok:
        raise MetadataError(f"{where}: {key} must be [channels, height, width] with 1..{MAX_CHANNELS} channels "
                            f"and sides of 1..{MAX_IMAGE_SIDE} px; got {value!r}.")
    return int(value[0]), int(value[1]), int(value[2])


def _check_fraction(value: Any, key: str, where: str) -> None:
    if not _is_number(value) or not math.isfinite(value) or not 0 < value <= 1:
        raise MetadataError(f"{where}: {key} must be a number in (0, 1] (the share of the resized image the "
                            f"centre crop keeps, e.g. 0.875); got {value!r}.")


def check_preprocessing(values: Mapping[str, Any], where: str) -> None:
    """Preprocessing in timm's ``pretrained_cfg`` vocabulary (also :class:`Preprocessing`'s fields): finite
    ``mean``, ``std`` > 0 (one value per channel), known ``interpolation`` / ``crop_mode``, sane sizes,
    ``crop_pct`` in (0, 1]. Keys that are absent are not checked (the variant's defaults apply)."""
    if not isinstance(values, Mapping):
        raise MetadataError(f"{where}: the preprocessing record must be a JSON object; got {type(values).__name__}.")
    channels = None
    if values.get("input_size") is not None:
        channels = _check_size(values["input_size"], "input_size", where)[0]
    if values.get("test_input_size") is not None:
        _check_size(values["test_input_size"], "test_input_size", where)
    for key in ("crop_pct", "test_crop_pct"):
        if values.get(key) is not None:
            _check_fraction(values[key], key, where)
    interpolation = values.get("interpolation")
    if interpolation is not None and interpolation not in INTERPOLATIONS:
        raise MetadataError(f"{where}: unknown interpolation {interpolation!r}; timm knows "
                            f"{', '.join(INTERPOLATIONS)}.")
    crop_mode = values.get("crop_mode")
    if crop_mode is not None and crop_mode not in CROP_MODES:
        raise MetadataError(f"{where}: unknown crop_mode {crop_mode!r}; timm knows {', '.join(CROP_MODES)}.")
    for key in ("mean", "std"):
        if values.get(key) is None:
            continue
        seq = values[key]
        if (not isinstance(seq, (list, tuple)) or not seq or not all(_is_number(v) for v in seq)
                or (channels is not None and len(seq) not in (1, channels))):
            raise MetadataError(f"{where}: {key} must be a list of numbers, one per input channel"
                                f"{f' ({channels})' if channels else ''}; got {seq!r}.")
        if not all(math.isfinite(v) for v in seq):
            raise MetadataError(f"{where}: {key} {list(seq)} is not finite (NaN or infinity): every prediction "
                                "would be garbage. The record is corrupt; publish or convert the weights again.")
        if key == "std" and not all(v > 0 for v in seq):
            raise MetadataError(f"{where}: std {list(seq)} must be > 0 for every channel (images are divided "
                                "by it).")


def preprocessing_from_record(raw: str, where: str) -> Preprocessing:
    """A weights file's recorded ``preprocessing`` (JSON of :class:`Preprocessing`), parsed and checked. An
    unparseable or invalid record is an error, never silently replaced by a default."""
    try:
        values = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"{where}: the recorded preprocessing is not valid JSON ({exc}).") from None
    check_preprocessing(values, where)
    try:
        return Preprocessing.from_json(raw)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"{where}: the recorded preprocessing has unknown or malformed fields ({exc}).") from None


def check_label_names(labels: Any, num_classes: int | None, where: str) -> None:
    if labels is None:
        return
    if not isinstance(labels, (list, tuple)) or not all(isinstance(n, str) for n in labels):
        raise MetadataError(f"{where}: label_names must be a list of strings; got {type(labels).__name__}.")
    if num_classes is not None and len(labels) != num_classes:
        raise MetadataError(f"{where}: {len(labels)} label names for a head of {num_classes} classes; every output "
                            "needs exactly one name (fix label_names or num_classes).")


def read_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """(metadata, tensor shapes) of a safetensors file, from its JSON header only."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > min(size - 8, MAX_HEADER_BYTES):
                raise ValueError(f"header length {length} does not fit the file")
            header = json.loads(handle.read(length))
        metadata = header.pop("__metadata__", None) or {}
        shapes = {str(k): tuple(int(d) for d in v["shape"]) for k, v in header.items()}
    except (OSError, struct.error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptWeightsError(f"{path} is not a readable safetensors file ({exc}); download or convert it "
                                  "again.") from None
    return {str(k): str(v) for k, v in dict(metadata).items()}, shapes


def check_weights_header(
    path: str | os.PathLike,
    where: str,
    *,
    architecture: str | None = None,
    num_classes: int | None = None,
    label_names: Sequence[str] | None = None,
    classifier: str = "fc",
) -> None:
    """What a record claims against what the file holds: the architecture the file records (ours record it),
    the classifier's rows, and one class name per row."""
    metadata, shapes = read_header(path)
    recorded = (metadata.get("architecture") or "").split(".", 1)[0]
    if architecture and recorded:
        claimed = architecture.split(".", 1)[0]
        peer = VARIANTS[recorded].timm_name if recorded in VARIANTS else None
        if claimed != recorded and claimed != peer:
            raise MetadataError(f"{where} names the architecture '{architecture}', but {Path(path).name} holds "
                                f"weights for '{recorded}' (recorded in its header): set \"architecture\": "
                                f"\"{recorded}\" in config.json, or use weights made for '{claimed}'.")
    weight = shapes.get(f"{classifier}.weight")
    rows = weight[0] if weight else None
    if rows is not None and num_classes is not None and num_classes != rows:
        raise MetadataError(f"{where} says num_classes {num_classes}, but the classifier in {Path(path).name} "
                            f"({classifier}.weight {list(weight or ())}) has {rows} outputs: fix num_classes.")
    check_label_names(label_names, rows if rows is not None else num_classes, where)


def check_hub_config(config: Any, where: str, weights: str | os.PathLike | None = None) -> None:
    """A repo's ``config.json`` (timm's layout, with our ``resnet_hub`` section when we published it), and
    against ``weights`` (the repo's model.safetensors) when that file is at hand."""
    if not isinstance(config, Mapping):
        raise MetadataError(f"{where} must hold a JSON object; got {type(config).__name__}.")
    cfg = config.get("pretrained_cfg", config)  # timm's legacy single-dict layout has no pretrained_cfg
    if not isinstance(cfg, Mapping):
        raise MetadataError(f"{where}: pretrained_cfg must be a JSON object; got {type(cfg).__name__}.")
    architecture = config.get("architecture")
    if not isinstance(architecture, str) or not architecture:
        raise MetadataError(f"{where} names no architecture (timm needs \"architecture\", e.g. \"myresnet50\").")
    num_classes = config.get("num_classes", cfg.get("num_classes"))
    if num_classes is not None:
        num_classes = check_num_classes(num_classes, where)
    check_preprocessing(cfg, where)
    section = config.get("resnet_hub")
    if isinstance(section, Mapping) and section.get("preprocessing") is not None:
        check_preprocessing(section["preprocessing"], f"{where} (resnet_hub.preprocessing)")
    labels = config.get("label_names", cfg.get("label_names"))
    if weights is not None and Path(weights).is_file():  # the tensors are the ground truth: compare with them first
        recorded_classifier = cfg.get("classifier")
        classifier = recorded_classifier if isinstance(recorded_classifier, str) else "fc"
        check_weights_header(weights, where, architecture=architecture, num_classes=num_classes,
                             label_names=labels, classifier=classifier)
    check_label_names(labels, num_classes, where)


def check_build_request(name: str, kwargs: Mapping[str, Any]) -> None:
    """What the builder is asked for, before it allocates: the head size (given, or from a ``pretrained_cfg``
    that timm passes for ``local-dir:`` / ``hf-hub:`` names) and that ``pretrained_cfg``'s preprocessing."""
    where = f"{name}"
    if kwargs.get("num_classes") is not None:
        check_num_classes(kwargs["num_classes"], f"{where} (num_classes argument)")
    cfg = kwargs.get("pretrained_cfg")
    if cfg is not None and not isinstance(cfg, (str, Mapping)):
        cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else None  # timm's PretrainedCfg
    if isinstance(cfg, Mapping):
        source = cfg.get("hf_hub_id") or cfg.get("file") or "pretrained_cfg"
        where = f"{name} pretrained_cfg ({source})"
        if cfg.get("num_classes") is not None and kwargs.get("num_classes") is None:
            check_num_classes(cfg["num_classes"], where)
        check_preprocessing(cfg, where)
