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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from .data import ImageLoadError, SkippedFile, expand_image_paths, load_image
from ..errors import ModelArgumentError
from ..zoo.model_loading import class_names, names_for_head

if TYPE_CHECKING:
    from .evaluate import Target

__all__ = [
    "ImagePrediction",
    "PredictionRun",
    "Predictor",
    "build_predictor",
    "SkippedFile",
    "class_names",
    "expand_image_paths",
    "load_image",
    "predictor_for_target",
    "topk",
]

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

    ``model`` is a PyTorch module (possibly an optimised copy, ``prepare_for_inference``) or any function from a
    normalised float batch to logits (an export's ONNX Runtime / TensorRT runner, :func:`predictor_for_target`).
    ``data_config`` is the timm data config the weights expect (default: the module's ``pretrained_cfg``).
    """

    def __init__(
        self,
        model: nn.Module | Callable[[torch.Tensor], Any],
        *,
        data_config: Mapping[str, Any] | None = None,
        labels: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        from timm.data import create_transform, resolve_data_config

        self.model = model.eval() if isinstance(model, nn.Module) else model
        self.device = torch.device(device)
        self.data_config = dict(data_config) if data_config is not None else resolve_data_config(model=model)
        self.transform = create_transform(**self.data_config, is_training=False)
        num_classes = getattr(model, "num_classes", None)
        self.labels = list(labels) if labels is not None else class_names(int(num_classes or 1000))

    def predict_tensor(self, batch: torch.Tensor, k: int = 5) -> list[tuple[list[int], list[str], list[float]]]:
        with torch.inference_mode():
            logits = self.model(batch.to(self.device))
        return topk(torch.as_tensor(logits), k, self.labels)

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
    name: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    optimize: bool = True,
    device: str = "cpu",
) -> Predictor:
    """A Predictor for a variant with the preprocessing and class names its weights record.

    The model comes from :func:`resnet_hub.zoo.model_loading.load_model`, the loader every command uses: ``name``
    is a variant (``myresnet50``, ``myresnet50.tv_in1k``, ``hf-hub:ORG/NAME``) with ``weights`` (a local
    safetensors file: head size, preprocessing and class names from the file) or ``pretrained`` (the published
    weights and their preprocessing), or neither (random weights, only to try the pipeline); or ``name`` is
    itself a ``.safetensors`` file that records its architecture. ``optimize`` runs the BatchNorm-folded,
    channels-last copy from :func:`resnet_hub.model.inference.prepare_for_inference`. Export directories are opened
    by the export layer, above this module: see :func:`predictor_for_target`.
    """
    from ..devices import resolve_device
    from ..model.inference import prepare_for_inference
    from ..zoo.model_loading import load_model

    device = str(resolve_device(device))  # 'tpu', or cuda without a GPU: one clear error before any work
    if is_weights_file(name):
        if weights is not None or pretrained:
            raise ModelArgumentError(f"{name} is a weights file: pass it either as NAME or as --weights FILE "
                                     "(with a variant name), and without --pretrained")
        loaded = load_model(None, weights=name, device=device)
    else:
        loaded = load_model(str(name), weights=weights, pretrained=pretrained, device=device)
    run_model = prepare_for_inference(loaded.model) if optimize else loaded.model
    return Predictor(run_model.to(device), data_config=loaded.data_config(), device=device, labels=loaded.labels())


def is_weights_file(name: str | os.PathLike) -> bool:
    """Whether a NAME given to predict is a safetensors weights file rather than a model name."""
    return str(name).endswith(".safetensors") or Path(name).is_file()


def predictor_for_target(target: "Target") -> Predictor:
    """A Predictor for an already opened evaluation target (an export directory's ONNX Runtime or TensorRT
    runner with the manifest's preprocessing and class names): the same batching, top-k and output as for
    PyTorch weights."""
    labels = names_for_head(target.label_names, target.num_classes) or class_names(target.num_classes)
    return Predictor(target.logits, data_config=target.data_config, labels=labels, device="cpu")
