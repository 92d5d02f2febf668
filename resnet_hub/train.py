"""Fine-tuning: a variant trained on labelled images and saved as a self-describing safetensors file.

Built from timm's own parts (``create_optimizer_v2``, ``create_scheduler_v2``, its transforms) so the recipe is
the one timm users know. The output records everything downstream steps need to use the weights correctly:
architecture, class names, the preprocessing at the trained input size, and the training record (data, epochs,
validation accuracy) that publish turns into the model card's ``model-index``.

Determinism: with the same ``seed`` on the same machine, two runs write the same weights (shuffling, the
random crops and the initialisation are all seeded; data loading runs in the main process).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .data import (
    DIGITS,
    LabelledImages,
    batches,
    eval_transform,
    hflip_for,
    open_labelled,
    train_transform,
)
from .errors import TrainingError
from .model_loading import LABEL_NAMES_KEY, PREPROCESSING_KEY, TRAINING_KEY, at_input_size, load_model

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class FinetuneOptions:
    """The knobs of ``resnet-hub finetune`` (defaults fit a small dataset from scratch or from ImageNet weights)."""

    epochs: int = 10
    img_size: int | None = None  # None: the weights' own input size
    batch_size: int = 64
    lr: float = 0.05
    opt: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 1
    val_split: float = 0.2
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # mixed precision on CUDA only

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainingError(f"--epochs and --batch-size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainingError(f"--lr must be a positive number, got {self.lr}")
        if self.img_size is not None and self.img_size < 32:
            raise TrainingError(f"--img-size must be >= 32 (a ResNet downsamples by 32), got {self.img_size}")
        if self.opt not in OPTIMIZERS:
            raise TrainingError(f"Unknown optimizer '{self.opt}'; choose one of: {', '.join(OPTIMIZERS)}")
        if self.device not in ("cpu", "cuda"):
            raise TrainingError(f"--device must be 'cpu' or 'cuda', got '{self.device}'")


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    train_top1: float
    val_top1: float
    val_top5: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class StepUpdate:
    """Progress within an epoch, for progress bars: running loss and accuracy of the epoch so far."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    top1: float


@dataclass
class FinetuneResult:
    output: Path
    sha256: str
    architecture: str
    classes: list[str]
    epochs: list[EpochRecord]
    record: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def val_top1(self) -> float:
        return self.epochs[-1].val_top1

    @property
    def val_top5(self) -> float:
        return self.epochs[-1].val_top5


def seed_everything(seed: int) -> None:
    """Python's RNG drives timm's random crops, torch's the init and shuffling, numpy's some transforms."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def finetune(
    name: str,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    options: FinetuneOptions = FinetuneOptions(),
    overwrite: bool = False,
    on_step: Callable[[StepUpdate], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> FinetuneResult:
    """Train ``name`` on ``data`` (an image folder or ``digits``) and write ``output`` (safetensors).

    The head is replaced to fit the data's classes; the backbone starts from ``weights`` / ``pretrained`` (or
    random init). The file is written once, atomically, after the last epoch.
    """
    import torch

    from .weights import save_weights

    options.validate()
    output = Path(output)
    if output.suffix != ".safetensors":
        raise TrainingError(f"--output must be a .safetensors file, got {output}")
    if output.exists() and not overwrite:
        raise TrainingError(f"{output} already exists; pass --force to replace it")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
    train_images = open_labelled(data, "train", val_split=options.val_split, seed=options.seed)
    val_images = open_labelled(data, "val", val_split=options.val_split, seed=options.seed)

    seed_everything(options.seed)
    loaded = _initial_model(name, weights, pretrained, len(train_images.classes))
    model = loaded.model.to(options.device)
    preprocessing = at_input_size(loaded.preprocessing, options.img_size or loaded.preprocessing.input_size[-1])
    from .model_loading import data_config_of

    config = data_config_of(preprocessing)
    train_loader, train_set = batches(train_images, train_transform(config, hflip=hflip_for(train_images)),
                                      options.batch_size, shuffle=True, seed=options.seed)
    val_loader, val_set = batches(val_images, eval_transform(config), max(options.batch_size, 64))
    if len(train_loader) == 0:
        raise TrainingError(f"No training images in {data}")

    history = _fit(model, train_loader, val_loader, options, on_step, on_epoch)
    skipped = {**train_set.skipped, **val_set.skipped}
    record = dict(
        data=dict(train=train_images.describe() | {"classes": None}, val=val_images.describe() | {"classes": None}),
        base_weights=loaded.weights,
        base_weights_sha256=loaded.weights_sha256,
        epochs=options.epochs,
        img_size=preprocessing.input_size[-1],
        options={k: v for k, v in asdict(options).items() if k not in ("device",)},
        device=options.device,
        val_top1=history[-1].val_top1,
        val_top5=history[-1].val_top5,
        history=[asdict(h) for h in history],
        skipped_files=len(skipped),
    )
    model.eval().cpu()
    sha = save_weights(model, output, architecture=loaded.architecture, overwrite=overwrite, metadata={
        LABEL_NAMES_KEY: list(train_images.classes),
        PREPROCESSING_KEY: preprocessing.to_json(),
        TRAINING_KEY: record,
        "num_classes": str(len(train_images.classes)),
    })
    return FinetuneResult(output=output, sha256=sha, architecture=loaded.architecture,
                          classes=list(train_images.classes), epochs=history, record=record, skipped=skipped,
                          ignored=train_images.ignored + val_images.ignored)


def _initial_model(name: str, weights, pretrained: bool, num_classes: int):
    """The starting point with a fresh head for ``num_classes`` (timm re-initialises a head of another size)."""
    if weights is None:
        return load_model(name, pretrained=pretrained, num_classes=num_classes)
    loaded = load_model(name, weights=weights)  # the file's own head size: a strict, fully checked load
    if loaded.num_classes != num_classes:
        loaded.model.reset_classifier(num_classes)
        loaded.num_classes = num_classes
        loaded.label_names = None
    return loaded


def _fit(model, train_loader, val_loader, options: FinetuneOptions, on_step, on_epoch) -> list[EpochRecord]:
    import torch
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    optimizer = create_optimizer_v2(model, opt=options.opt, lr=options.lr, weight_decay=options.weight_decay,
                                    **({"momentum": options.momentum} if options.opt == "sgd" else {}))
    warmup = min(options.warmup_epochs, max(options.epochs - 1, 0))
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=options.epochs,
                                       warmup_epochs=warmup, warmup_lr=options.lr / 10, min_lr=options.lr / 100,
                                       step_on_epochs=False, updates_per_epoch=len(train_loader))
    loss_fn = torch.nn.CrossEntropyLoss()
    cuda = options.device == "cuda"
    amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and options.amp and amp_dtype == torch.float16)
    history: list[EpochRecord] = []
    updates = 0
    for epoch in range(options.epochs):
        start = time.perf_counter()
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        for step, batch in enumerate(train_loader):
            if batch is None:
                continue
            x, y = batch[0].to(options.device), batch[1].to(options.device)
            with torch.autocast("cuda", dtype=amp_dtype, enabled=cuda and options.amp):
                logits = model(x)
                loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            updates += 1
            scheduler.step_update(num_updates=updates)
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(y)
            if on_step:
                on_step(StepUpdate(epoch + 1, options.epochs, step + 1, len(train_loader), loss_sum / seen,
                                   correct / seen))
        if not math.isfinite(loss_sum):
            raise TrainingError(f"The loss diverged (non-finite) in epoch {epoch + 1}; lower --lr (now {options.lr})")
        scheduler.step(epoch + 1)
        val_top1, val_top5 = _validate(model, val_loader, options.device)
        record = EpochRecord(epoch=epoch + 1, train_loss=loss_sum / max(seen, 1), train_top1=correct / max(seen, 1),
                             val_top1=val_top1, val_top5=val_top5, lr=optimizer.param_groups[0]["lr"],
                             seconds=time.perf_counter() - start)
        history.append(record)
        if on_epoch:
            on_epoch(record)
    return history


def _validate(model, loader, device: str) -> tuple[float, float]:
    import torch

    model.eval()
    n = top1 = top5 = 0
    with torch.inference_mode():
        for batch in loader:
            if batch is None:
                continue
            logits = model(batch[0].to(device)).float()
            y = batch[1].to(device)
            k = min(5, logits.shape[1])
            best = logits.topk(k, dim=1).indices
            top1 += int((best[:, 0] == y).sum())
            top5 += int((best == y[:, None]).any(dim=1).sum())
            n += len(y)
    if n == 0:
        raise TrainingError("No readable validation images")
    return top1 / n, top5 / n


__all__ = ["DIGITS", "EpochRecord", "FinetuneOptions", "FinetuneResult", "StepUpdate", "finetune",
           "LabelledImages"]
