"""Classify image files: timm's preprocessing for the weights in use, batching, top-k with class names.

The preprocessing must be the one the weights were trained with, so it comes from the weights:
the pretrained tag's timm ``pretrained_cfg`` for ``--pretrained``, the preprocessing recorded in a
safetensors file's metadata for ``--weights FILE`` (falling back to the variant's default), and is
turned into a transform by timm itself (``resolve_data_config`` + ``create_transform``), so our
predictions match what timm's own evaluation would compute.

Files that cannot be read as images are reported back as skipped, never fatal: one bad file in a
folder of thousands should not cost the other predictions.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from .data import ImageLoadError, SkippedFile, expand_image_paths, load_image

__all__ = [
    "ImagePrediction",
    "PredictionRun",
    "Predictor",
    "build_predictor",
    "SkippedFile",
    "class_names",
    "data_config_for",
    "expand_image_paths",
    "load_image",
    "preprocessing_from_metadata",
    "topk",
]

# timm data-config keys a weights file may record (timm's pretrained_cfg vocabulary).
_DATA_CONFIG_KEYS = ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std")
# Metadata keys, in order of preference, that may hold the preprocessing as JSON.
PREPROCESSING_METADATA_KEYS = ("preprocessing", "pretrained_cfg")


@dataclass(frozen=True)
class ImagePrediction:
    """Top-k of one image: parallel lists, best first."""

    path: str
    indices: list[int]
    labels: list[str]
    probabilities: list[float]


@dataclass
class PredictionRun:
    predictions: list[ImagePrediction] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def preprocessing_from_metadata(metadata: Mapping[str, str]) -> dict[str, Any] | None:
    """The timm data config recorded in safetensors metadata (JSON under 'preprocessing' or
    'pretrained_cfg'), or None when the file records none."""
    for key in PREPROCESSING_METADATA_KEYS:
        raw = metadata.get(key)
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            config = {k: value[k] for k in _DATA_CONFIG_KEYS if k in value}
            if "input_size" in config:
                config["input_size"] = tuple(config["input_size"])
            for k in ("mean", "std"):
                if k in config:
                    config[k] = tuple(config[k])
            if config:
                return config
    return None


def data_config_for(model: nn.Module, override: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """timm's evaluation data config for ``model`` (from its pretrained_cfg), with ``override`` on top."""
    from timm.data import resolve_data_config

    if override:
        return resolve_data_config(args=dict(override), model=model)
    return resolve_data_config(model=model)


def class_names(num_classes: int) -> list[str]:
    """ImageNet-1k descriptions for a 1000-class head (from timm's bundled data), else 'class N'."""
    if num_classes == 1000:
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(num_classes)]
    return [f"class {i}" for i in range(num_classes)]


def topk(logits: torch.Tensor, k: int, labels: Sequence[str]) -> list[tuple[list[int], list[str], list[float]]]:
    """Softmax then the k most probable classes of each row: (indices, labels, probabilities)."""
    probabilities = logits.float().softmax(dim=-1)
    values, indices = probabilities.topk(min(k, probabilities.shape[-1]), dim=-1)
    rows = []
    for idx_row, val_row in zip(indices.tolist(), values.tolist()):
        rows.append((idx_row, [labels[i] for i in idx_row], val_row))
    return rows


class Predictor:
    """A model with its transform and labels, ready to classify files in batches.

    ``model`` can be an optimised copy (``prepare_for_inference``); ``data_model`` is the model whose
    pretrained_cfg decides the preprocessing (defaults to ``model``).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        data_config: Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        from timm.data import create_transform

        self.model = model.eval()
        self.device = torch.device(device)
        self.data_config = dict(data_config) if data_config is not None else data_config_for(model)
        self.transform = create_transform(**self.data_config, is_training=False)
        num_classes = getattr(model, "num_classes", None)
        self.labels = list(labels) if labels is not None else class_names(int(num_classes or 1000))

    def predict_tensor(self, batch: torch.Tensor, k: int = 5) -> list[tuple[list[int], list[str], list[float]]]:
        with torch.inference_mode():
            logits = self.model(batch.to(self.device))
        return topk(logits, k, self.labels)

    def iter_batches(
        self, paths: Sequence[Path], batch_size: int
    ) -> Iterator[tuple[list[Path], torch.Tensor | None, list[SkippedFile]]]:
        """Decoded, transformed batches of up to ``batch_size`` readable images, with the files skipped."""
        pending: list[Path] = []
        tensors: list[torch.Tensor] = []
        skipped: list[SkippedFile] = []
        for path in paths:
            try:
                tensors.append(self.transform(load_image(path)))
                pending.append(path)
            except ImageLoadError as exc:
                skipped.append(SkippedFile(str(path), str(exc)))
            if len(tensors) == batch_size:
                yield pending, torch.stack(tensors), skipped
                pending, tensors, skipped = [], [], []
        if tensors or skipped:
            yield pending, (torch.stack(tensors) if tensors else None), skipped

    def predict_paths(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        k: int = 5,
        batch_size: int = 8,
        on_progress: Callable[[int], None] | None = None,
    ) -> PredictionRun:
        """Top-k for every readable image among ``paths`` (folders expanded); the rest come back skipped.

        ``on_progress(n)`` is called after each batch with the number of files it consumed.
        """
        if batch_size < 1 or k < 1:
            raise ValueError("batch_size and k must be >= 1")
        files, missing = expand_image_paths(paths)
        run = PredictionRun(skipped=list(missing))
        for batch_paths, batch, skipped in self.iter_batches(files, batch_size):
            run.skipped.extend(skipped)
            if batch is not None:
                for path, (indices, labels, probs) in zip(batch_paths, self.predict_tensor(batch, k)):
                    run.predictions.append(ImagePrediction(str(path), indices, labels, probs))
            if on_progress is not None:
                on_progress(len(batch_paths) + len(skipped))
        return run


def build_predictor(
    name: str,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    optimize: bool = True,
    device: str = "cpu",
) -> Predictor:
    """A Predictor for a variant with the preprocessing its weights expect.

    ``weights``: a local safetensors file; its head size is read from the file and its preprocessing
    from the metadata (``preprocessing`` / ``pretrained_cfg`` JSON), else the variant's default
    preprocessing. ``pretrained``: the tag's published weights and timm pretrained_cfg. Neither: random
    weights with the variant's pretrained_cfg (useful only to try the pipeline). ``optimize`` runs the
    BatchNorm-folded, channels-last copy from :func:`resnet_hub.inference.prepare_for_inference`.
    """
    from .lookup import get_variant
    from .devices import resolve_device
    from .factory import create_model
    from .inference import prepare_for_inference
    from .model_loading import head_size, hub_label_names, label_names_from_metadata, names_for_head
    from .weights import read_metadata

    device = str(resolve_device(device))  # 'tpu', or cuda without a GPU: one clear error before any work
    variant = get_variant(name)  # also hf-hub:ORG/NAME (the architecture its config.json names)
    override: dict[str, Any] | None = None
    kwargs: dict[str, Any] = {}
    if weights is not None:
        metadata = read_metadata(weights)  # typed errors for missing / corrupt files, before any model is built
        override = preprocessing_from_metadata(metadata) or variant.default_preprocessing.to_timm()
        num_classes = head_size(weights)
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
    model = create_model(name, pretrained=pretrained, weights=weights, **kwargs).eval()
    data_config = data_config_for(model, override)
    run_model = prepare_for_inference(model) if optimize else model
    num_classes = int(getattr(model, "num_classes", 1000))
    # Fine-tuned weights record their class names ('cat', 'dog', '0'..'9'): show those, not 'class N'. A published
    # repo records them in its config.json.
    recorded = label_names_from_metadata(metadata) if weights is not None else hub_label_names(name)
    labels = names_for_head(recorded, num_classes) or class_names(num_classes)
    return Predictor(run_model.to(device), data_config=data_config, device=device, labels=labels)
