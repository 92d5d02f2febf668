"""Accuracy on labelled images: top-1, top-5 and per-class, for PyTorch weights and exported artifacts alike.

A PyTorch model and its ONNX / TensorRT export are evaluated through the same code path (same data, same
preprocessing, same class mapping); only the function that turns a batch into logits differs. That is what
makes the export accuracy gate's "reference vs artifact" comparison fair.

Images stream through :mod:`resnet_hub.tasks.input_pipeline` (worker processes, the one decoder of ``data.py``) one
batch at a time, and only running counts are kept, so memory does not grow with the number of images: scoring
ImageNet's 50,000 validation images costs what scoring 1,000 does. Several logits functions can be scored on
the same stream (:func:`score_many`): each batch is decoded once and every function sees the same tensor.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .data import DIGITS, LabelledImages, SkippedFile, eval_transform, has_val_split, open_labelled
from ..errors import DatasetError, EvaluationError

Logits = Callable[[Any], Any]  # (N, C, H, W) float tensor -> (N, classes) logits (tensor or ndarray)
SAMPLE_IMAGES = 64  # images prepare() reads up front: a fast check that the data is readable, and parity inputs


@dataclass(frozen=True)
class ClassAccuracy:
    name: str
    n: int
    top1: float


@dataclass(frozen=True)
class Confusion:
    """Counts of (true class, predicted class) over the data's classes, in ``per_class`` order."""

    counts: list[list[int]]  # counts[i][j]: images of class i predicted as class j
    other: list[int]  # images of class i predicted as a model class the data does not have


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
    seconds: float = 0.0  # wall time of the pass (reading, preprocessing and inference)
    confusion: Confusion | None = None  # counts[true data class][predicted data class], for --plot

    def to_dict(self) -> dict[str, Any]:
        return dict(top1=self.top1, top5=self.top5, n=self.n, target=self.target, runtime=self.runtime,
                    data=self.data, preprocessing=self.preprocessing,
                    per_class=[asdict(c) for c in self.per_class],
                    skipped=[asdict(s) for s in self.skipped],
                    **({"confusion": asdict(self.confusion)} if self.confusion is not None else {}))


@dataclass(frozen=True)
class Progress:
    """Where a pass over the images stands (for progress displays)."""

    done: int  # images tried (read or skipped)
    total: int
    skipped: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Images per second so far."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


OnProgress = Callable[[Progress], None]


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
    imagenet = imagenet_mapping(data_classes) if num_classes == 1000 else None
    if imagenet is not None:
        return imagenet
    if len(data_classes) != num_classes:
        raise EvaluationError(f"The data has {len(data_classes)} classes but the model predicts {num_classes}, "
                              "and its weights record no class names to match them by; evaluate with data that "
                              "has one sub-folder per model class, or weights made by `resnet-hub finetune`"
                              + ("; an ImageNet head also takes any subset of ImageNet's classes named by synset "
                                 "id (n01440764) or class name (tench)" if num_classes == 1000 else ""))
    return list(range(num_classes))


def imagenet_mapping(data_classes: Sequence[str]) -> list[int] | None:
    """ImageNet-1k output index of each data class named by its synset id (``n01440764``, as ImageNet's and
    Imagenette's folders are) or its class name (``tench``), as timm's bundled ImageNet info spells them; None
    unless every class matches. A 1000-class head without recorded names is ImageNet's (timm's convention,
    converted and Hub weights alike), so a subset of ImageNet's classes is scored by name."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    index: dict[str, int] = {}
    for i in range(1000):
        index[info.index_to_label_name(i).lower()] = i
        for name in info.index_to_description(i).split(","):
            index.setdefault(name.strip().lower(), i)
    mapping = [index.get(c.strip().lower()) for c in data_classes]
    return None if any(m is None for m in mapping) else [int(m) for m in mapping if m is not None]


@dataclass
class PreparedData:
    """Labelled images ready to stream as model inputs: which images, how they map to model classes, and the
    preprocessing. Holds no pixels beyond ``sample`` (the first readable images, for parity checks)."""

    images: LabelledImages
    mapping: list[int]  # model index of each data class
    data_config: dict[str, Any]
    sample: Any = None  # (<= SAMPLE_IMAGES, C, H, W) float tensor of the first readable images, or None
    workers: int | None = None  # decoding processes (None: input_pipeline.default_workers())
    skipped: list[SkippedFile] = field(default_factory=list)  # unreadable files met by the last pass
    _sampled: int = field(default=0, repr=False)  # how many images ``sample`` was asked for

    def __len__(self) -> int:
        return len(self.images)

    def head(self, n: int):
        """The first ``n`` readable images as one tensor (read now if ``prepare`` did not sample them)."""
        if self.sample is None or self._sampled < n:
            self.sample, self._sampled = _read_head(self.images, eval_transform(self.data_config), n), n
        return self.sample[:n]

    def loader(self, batch_size: int):
        from .input_pipeline import make_loader

        return make_loader(self.images, eval_transform(self.data_config), batch_size, workers=self.workers)


def _read_head(images: LabelledImages, transform, n: int):
    import torch

    from .input_pipeline import make_loader

    head = images.subset(range(min(len(images), max(n, 1) * 4)))  # a few unreadable files may sit among them
    tensors = []
    with make_loader(head, transform, max(n, 1), workers=0) as loader:
        for batch in loader:
            tensors.append(batch.inputs)
            if sum(len(t) for t in tensors) >= n:
                break
    return torch.cat(tensors)[:n]


def prepare(
    source: str | os.PathLike | LabelledImages,
    data_config: dict[str, Any],
    mapping_for: Callable[[Sequence[str]], list[int]],
    *,
    split: str = "eval",
    limit: int | None = None,
    sample: int = SAMPLE_IMAGES,
    workers: int | None = None,
) -> PreparedData:
    """Open the labelled images (the first ``limit`` of them), map their classes, and read the first
    ``sample`` readable ones now: unreadable data fails here, in seconds, before any slow work."""
    images = source if isinstance(source, LabelledImages) else open_labelled(source, split)  # type: ignore[arg-type]
    if limit is not None and limit < len(images):
        images = images.subset(range(limit))
    prepared = PreparedData(images=images, mapping=mapping_for(images.classes), data_config=data_config,
                            workers=workers)
    if sample:
        prepared.head(sample)
    return prepared


class _Tally:
    """Running top-1 / top-5 / per-class counts of one logits function: all that is kept of a pass."""

    def __init__(self, classes: Sequence[str], mapping: Sequence[int]) -> None:
        import torch

        self.classes = list(classes)
        self.mapping = torch.tensor(list(mapping), dtype=torch.int64)
        self.hit1 = self.hit5 = self.n = 0
        self.class_n = torch.zeros(len(classes), dtype=torch.int64)
        self.class_hit = torch.zeros(len(classes), dtype=torch.int64)
        self.predictions: list[Any] = []
        # Confusion counts in data-class terms: a prediction of a model class the data lacks goes to `other`.
        self.column = torch.full((int(self.mapping.max()) + 1 if len(self.mapping) else 0,), -1, dtype=torch.int64)
        self.column[self.mapping] = torch.arange(len(self.mapping), dtype=torch.int64)
        self.confusion = torch.zeros(len(classes), len(classes), dtype=torch.int64)
        self.other = torch.zeros(len(classes), dtype=torch.int64)

    def add_logits(self, logits: Any, data_labels: Any) -> None:
        import numpy as np
        import torch

        out = torch.as_tensor(np.asarray(logits.detach().cpu() if hasattr(logits, "detach") else logits)).float()
        self.add_top(out.topk(min(5, out.shape[1]), dim=1).indices, data_labels)

    def add_top(self, top: Any, data_labels: Any) -> None:
        """``top``: (n, k) model indices, best first; ``data_labels``: (n,) indices into the data's classes."""
        import torch

        top = torch.as_tensor(top, dtype=torch.int64)
        data_labels = torch.as_tensor(data_labels, dtype=torch.int64)
        labels = self.mapping[data_labels]
        hit1 = top[:, 0] == labels
        hit5 = (top == labels[:, None]).any(dim=1)
        self.hit1 += int(hit1.sum())
        self.hit5 += int(hit5.sum())
        self.n += len(labels)
        self.class_n += torch.bincount(data_labels, minlength=len(self.classes))
        self.class_hit += torch.bincount(data_labels[hit1], minlength=len(self.classes))
        self.predictions.append(top[:, 0].clone())
        guess = top[:, 0]
        inside = guess < len(self.column)
        column = torch.full_like(guess, -1)
        column[inside] = self.column[guess[inside]]
        known = column >= 0
        self.confusion.index_put_((data_labels[known], column[known]), torch.ones(int(known.sum()), dtype=torch.int64),
                                  accumulate=True)
        self.other += torch.bincount(data_labels[~known], minlength=len(self.classes))

    def result(self, *, target: str, runtime: str, data: dict[str, Any], preprocessing: dict[str, Any],
               skipped: list[SkippedFile], seconds: float) -> Evaluation:
        import torch

        if not self.n:
            raise DatasetError(f"No readable images in {data.get('source')} ({data.get('split')}); "
                               f"{len(skipped)} file(s) could not be decoded")
        per_class = [ClassAccuracy(name=name, n=int(count), top1=int(hits) / int(count) if count else 0.0)
                     for name, count, hits in zip(self.classes, self.class_n, self.class_hit)]
        # Exact fractions of counts (float32 means would differ from an independent count in the 8th digit).
        return Evaluation(top1=self.hit1 / self.n, top5=self.hit5 / self.n, n=self.n, per_class=per_class,
                          target=target, runtime=runtime, data=data, preprocessing=preprocessing,
                          skipped=list(skipped), predictions=torch.cat(self.predictions), seconds=seconds,
                          confusion=Confusion(counts=self.confusion.tolist(), other=self.other.tolist()))


def score_many(
    logits_fns: Sequence[Logits],
    prepared: PreparedData,
    *,
    targets: Sequence[str],
    runtimes: Sequence[str],
    batch_size: int = 64,
    on_progress: OnProgress | None = None,
) -> list[Evaluation]:
    """Score every logits function on one pass over the images: each batch is decoded once and all of them
    get the same tensor (so a reference and its export see identical inputs)."""
    tallies = [_Tally(prepared.images.classes, prepared.mapping) for _ in logits_fns]
    start = time.perf_counter()
    with prepared.loader(batch_size) as loader:
        for batch in loader:
            for tally, logits_fn in zip(tallies, logits_fns):
                tally.add_logits(logits_fn(batch.inputs), batch.labels)
            if on_progress is not None:
                on_progress(Progress(loader.seen, loader.total, len(loader.skipped), time.perf_counter() - start))
        prepared.skipped = list(loader.skipped)
    seconds = time.perf_counter() - start
    return [tally.result(target=target, runtime=runtime, data=prepared.images.describe(),
                         preprocessing=_jsonable(prepared.data_config), skipped=prepared.skipped, seconds=seconds)
            for tally, target, runtime in zip(tallies, targets, runtimes)]


def score(
    logits_fn: Logits,
    prepared: PreparedData,
    *,
    target: str,
    runtime: str,
    batch_size: int = 64,
    on_progress: OnProgress | None = None,
) -> Evaluation:
    """Top-1 / top-5 / per-class accuracy of ``logits_fn`` on prepared data."""
    return score_many([logits_fn], prepared, targets=[target], runtimes=[runtime], batch_size=batch_size,
                      on_progress=on_progress)[0]


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}))


def torch_logits(model, device: str = "cpu") -> Logits:
    """Logits of ``model`` computed as a deploying user runs it: BatchNorm folded into the convolutions and NHWC
    memory (``prepare_for_inference``), the same outputs to float rounding at about 1.8x the rate of the
    unprepared model on a 2-core CPU (``benchmarks/evaluate_scale.py``); ``model`` itself is left as it is."""
    import torch

    from ..model.inference import prepare_for_inference

    fast = prepare_for_inference(model)

    def run(x):
        with torch.inference_mode():
            batch = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            return fast(batch).float().cpu()

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
    training: dict[str, Any] | None = None  # the weights' training record (finetune's split), when they carry one


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
    from ..devices import resolve_device
    from ..zoo.model_loading import load_model

    device = str(resolve_device(device))  # 'tpu', or cuda without a GPU: one clear line before any work
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
                  label_names=loaded.label_names, num_classes=loaded.num_classes, training=loaded.training_record)


def evaluation_images(data: str | os.PathLike, training: dict[str, Any] | None = None) -> LabelledImages:
    """The images to score for ``data``: its ``val/`` split (a folder holding only ``val/`` included), digits'
    val split, or a test folder as a whole.

    A folder without ``val/`` that the weights were fine-tuned on (their training record names it) is scored
    on finetune's own seeded hold-out, rebuilt from the recorded fraction and seed: scoring all of it would
    mix in the training images and overstate accuracy. Weights that record no split for it are refused.
    """
    if str(data) == DIGITS or has_val_split(data):
        return open_labelled(data, "eval")
    everything = open_labelled(data, "eval")
    if not _trained_on(training, data, len(everything)):
        return everything
    options = (training or {}).get("options") or {}
    fraction, seed = options.get("val_split"), options.get("seed")
    if not isinstance(fraction, (int, float)) or isinstance(seed, bool) or not isinstance(seed, int):
        raise EvaluationError(f"These weights were fine-tuned on {data} with a held-out split their record does "
                              "not describe, so scoring the folder would include training images; evaluate on a "
                              f"folder of images kept apart from training (or lay {data} out as train/ and val/)")
    held_out = open_labelled(data, "val", val_split=float(fraction), seed=seed)
    held_out.split = f"finetune's hold-out ({float(fraction):g}, seed {seed})"
    return held_out


def _trained_on(training: dict[str, Any] | None, data: str | os.PathLike, n_images: int) -> bool:
    """Whether the training record says the weights were fine-tuned on folder ``data``: the same path, or (a
    relative path recorded from another working directory, a moved copy) the same folder name holding as many
    images as finetune's train + val splits."""
    splits = (training or {}).get("data")
    if not isinstance(splits, dict):
        return False
    train, val = splits.get("train"), splits.get("val")
    if not isinstance(train, dict) or not isinstance(val, dict) or "source" not in val:
        return False
    recorded = Path(str(val["source"]))
    if str(recorded) == DIGITS:
        return False
    here = Path(data).resolve()
    if recorded.resolve() == here:
        return True
    counts = [split.get("n") for split in (train, val)]
    return (recorded.name == here.name and all(isinstance(c, int) for c in counts)
            and sum(c or 0 for c in counts) == n_images)


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
    workers: int | None = None,
    on_progress: OnProgress | None = None,
) -> Evaluation:
    """Evaluate TARGET on ``data``'s evaluation split (see :func:`evaluation_images`).

    TARGET: a model name, a weights file, or an already resolved :class:`Target` (an export directory's, from
    ``resnet_hub.export.directory.export_target``). ``workers`` decoding processes (None: a default from the CPU
    count); ``on_progress`` is called after every batch."""
    resolved = target if isinstance(target, Target) else resolve_target(target, name=name, weights=weights,
                                                                       pretrained=pretrained, device=device)
    images = evaluation_images(data, resolved.training)
    prepared = prepare(images, resolved.data_config,
                       lambda classes: class_mapping(classes, resolved.label_names, resolved.num_classes),
                       limit=limit, sample=0, workers=workers)
    return score(resolved.logits, prepared, target=resolved.description, runtime=resolved.runtime,
                 batch_size=batch_size, on_progress=on_progress)
