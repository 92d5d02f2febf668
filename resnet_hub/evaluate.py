"""Accuracy on labelled images: top-1, top-5 and per-class, for PyTorch weights and exported artifacts alike.

A PyTorch model and its ONNX / TensorRT export are evaluated through the same code path (same data, same
preprocessing, same class mapping); only the function that turns a batch into logits differs. That is what
makes the export accuracy gate's "reference vs artifact" comparison fair.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .data import LabelledImages, SkippedFile, eval_transform, open_labelled
from .errors import EvaluationError

Logits = Callable[[Any], Any]  # (N, C, H, W) float tensor -> (N, classes) logits (tensor or ndarray)


@dataclass(frozen=True)
class ClassAccuracy:
    name: str
    n: int
    top1: float


@dataclass
class Evaluation:
    """Accuracy of one model on one labelled dataset (fractions 0-1)."""

    top1: float
    top5: float
    n: int
    per_class: list[ClassAccuracy]
    target: str
    runtime: str
    data: dict[str, Any]
    preprocessing: dict[str, Any]
    skipped: list[SkippedFile] = field(default_factory=list)
    predictions: Any = None  # (n,) predicted model indices, for agreement between two evaluations

    def to_dict(self) -> dict[str, Any]:
        return dict(top1=self.top1, top5=self.top5, n=self.n, target=self.target, runtime=self.runtime,
                    data=self.data, preprocessing=self.preprocessing,
                    per_class=[asdict(c) for c in self.per_class],
                    skipped=[asdict(s) for s in self.skipped])


def class_mapping(data_classes: Sequence[str], label_names: Sequence[str] | None, num_classes: int) -> list[int]:
    """Model output index for each data class.

    When the weights record class names (fine-tuned models do), classes are matched by name, so a folder
    holding a subset of the classes, or listing them in another order, is still scored correctly. Without
    names, the data must have exactly as many classes as the head, in the same (sorted folder) order.
    """
    if label_names is not None:
        index = {name: i for i, name in enumerate(label_names)}
        unknown = [c for c in data_classes if c not in index]
        if unknown:
            raise EvaluationError(f"The data has classes the model does not predict: {unknown[:10]}"
                                  f"{' ...' if len(unknown) > 10 else ''}. The model's classes are: "
                                  f"{list(label_names)[:20]}{' ...' if len(label_names) > 20 else ''}")
        return [index[c] for c in data_classes]
    if len(data_classes) != num_classes:
        raise EvaluationError(f"The data has {len(data_classes)} classes but the model predicts {num_classes}, "
                              "and its weights record no class names to match them by; evaluate with data that "
                              "has one sub-folder per model class, or weights made by `resnet-hub finetune`")
    return list(range(num_classes))


@dataclass
class PreparedData:
    """Labelled images turned into model inputs once, so several runtimes can be scored on identical tensors."""

    images: LabelledImages
    inputs: Any  # (N, C, H, W) float32 tensor
    labels: Any  # (N,) model indices
    skipped: list[SkippedFile]
    data_config: dict[str, Any]


def prepare(
    source: str | os.PathLike | LabelledImages,
    data_config: dict[str, Any],
    mapping_for: Callable[[Sequence[str]], list[int]],
    *,
    split: str = "eval",
    limit: int | None = None,
) -> PreparedData:
    """Read, preprocess (timm eval transform of ``data_config``) and label every readable image once."""
    import torch

    from .data import stacked

    images = source if isinstance(source, LabelledImages) else open_labelled(source, split)  # type: ignore[arg-type]
    mapping = mapping_for(images.classes)
    inputs, labels, skipped = stacked(images, eval_transform(data_config), limit)
    model_labels = torch.tensor(mapping)[labels]
    return PreparedData(images=images, inputs=inputs, labels=model_labels, skipped=skipped, data_config=data_config)


def score(
    logits_fn: Logits,
    prepared: PreparedData,
    *,
    target: str,
    runtime: str,
    batch_size: int = 64,
) -> Evaluation:
    """Top-1 / top-5 / per-class accuracy of ``logits_fn`` on prepared data."""
    import numpy as np
    import torch

    outputs = []
    for start in range(0, len(prepared.inputs), batch_size):
        out = logits_fn(prepared.inputs[start:start + batch_size])
        outputs.append(torch.as_tensor(np.asarray(out.detach().cpu() if hasattr(out, "detach") else out)).float())
    logits = torch.cat(outputs)
    labels = prepared.labels
    k = min(5, logits.shape[1])
    best = logits.topk(k, dim=1).indices
    hit1 = best[:, 0] == labels
    hit5 = (best == labels[:, None]).any(dim=1)
    per_class = []
    data_labels = torch.tensor([prepared.images.label(i) for i in range(len(prepared.images))])
    readable = _readable_mask(prepared)
    data_labels = data_labels[readable]
    for index, name in enumerate(prepared.images.classes):
        members = data_labels == index
        count = int(members.sum())
        per_class.append(ClassAccuracy(name=name, n=count, top1=int(hit1[members].sum()) / count if count else 0.0))
    n = len(labels)
    # Exact fractions of counts (float32 means would differ from an independent count in the 8th digit).
    return Evaluation(top1=int(hit1.sum()) / n, top5=int(hit5.sum()) / n, n=n, per_class=per_class,
                      target=target, runtime=runtime, data=prepared.images.describe(),
                      preprocessing=_jsonable(prepared.data_config), skipped=list(prepared.skipped),
                      predictions=best[:, 0])


def _readable_mask(prepared: PreparedData):
    import torch

    skipped = {s.path for s in prepared.skipped}
    return torch.tensor([prepared.images.name_of(i) not in skipped for i in range(len(prepared.images))],
                        dtype=torch.bool)


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}))


def torch_logits(model, device: str = "cpu") -> Logits:
    import torch

    def run(x):
        with torch.inference_mode():
            return model(x.to(device)).float().cpu()

    return run


# --- targets -----------------------------------------------------------------------------------------------


@dataclass
class Target:
    """What to evaluate, resolved: a logits function, its data config and what it predicts."""

    description: str
    runtime: str
    logits: Logits
    data_config: dict[str, Any]
    label_names: list[str] | None
    num_classes: int


def resolve_target(
    target: str | os.PathLike | None,
    *,
    name: str | None = None,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    device: str = "cpu",
) -> Target:
    """TARGET may be a weights file (architecture from its metadata) or a model name (with ``weights`` /
    ``pretrained``)."""
    from .model_loading import load_model

    path = Path(target) if target is not None else None
    if path is not None and path.is_dir():
        # Export directories are opened by resnet_hub.export.directory.export_target (the export layer sits above
        # this module); the CLI dispatches there.
        raise EvaluationError(f"{path} is a directory: evaluate an export directory with "
                              "resnet_hub.export.directory.export_target(...) or `resnet-hub evaluate DIR`")
    if path is not None and path.suffix == ".safetensors":
        if weights is not None:
            raise EvaluationError("Pass the weights file either as TARGET or as --weights, not both")
        loaded = load_model(name, weights=path, device=device)
    elif target is not None and (path is None or not path.exists()):
        loaded = load_model(str(target), weights=weights, pretrained=pretrained, device=device)
    else:
        raise EvaluationError(f"Cannot evaluate {target}: pass a model name, a .safetensors weights file or an "
                              "export directory (with manifest.json)")
    return Target(description=f"{loaded.architecture} ({loaded.weights})", runtime=f"PyTorch ({device})",
                  logits=torch_logits(loaded.model, device), data_config=loaded.data_config(),
                  label_names=loaded.label_names, num_classes=loaded.num_classes)


def evaluate(
    target: "str | os.PathLike | Target | None",
    data: str | os.PathLike,
    *,
    name: str | None = None,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    device: str = "cpu",
    batch_size: int = 64,
    limit: int | None = None,
) -> Evaluation:
    """Evaluate TARGET on ``data``'s evaluation split (``SRC/val``, the whole folder, or digits' val split).

    TARGET: a model name, a weights file, or an already resolved :class:`Target` (an export directory's, from
    ``resnet_hub.export.directory.export_target``)."""
    resolved = target if isinstance(target, Target) else resolve_target(target, name=name, weights=weights,
                                                                       pretrained=pretrained, device=device)
    prepared = prepare(data, resolved.data_config,
                       lambda classes: class_mapping(classes, resolved.label_names, resolved.num_classes),
                       limit=limit)
    return score(resolved.logits, prepared, target=resolved.description, runtime=resolved.runtime,
                 batch_size=batch_size)
