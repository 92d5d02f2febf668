"""Fine-tuning: a variant trained on labelled images and saved as a self-describing safetensors file.

Built from timm's own parts (``create_optimizer_v2``, ``create_scheduler_v2``, its transforms) so the recipe is
the one timm users know. The output records everything downstream steps need to use the weights correctly:
architecture, class names, the preprocessing at the trained input size, and the training record (data, epochs,
validation accuracy) that publish turns into the model card's ``model-index``.

Determinism: with the same ``seed`` on the same machine, two runs write the same weights: the initialisation
is seeded, and the order and random crops of every epoch are functions of (seed, epoch, image) (``sampling.py``),
whatever the worker count. That is also what makes an interrupted run, resumed from its checkpoint
(``checkpoint.py``), write the same weights as an uninterrupted one, and N processes with batch B/N step like one
with batch B (with ``sync_bn``). Several processes: ``distributed.py`` (torchrun) and ``ray_train.py`` (Ray Train).
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .data import (
    DIGITS,
    LabelledImages,
    eval_transform,
    hflip_for,
    open_labelled,
    train_transform,
)
from ..errors import TrainingError
from ..zoo.model_loading import LABEL_NAMES_KEY, PREPROCESSING_KEY, TRAINING_KEY, at_input_size, load_model

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class FinetuneOptions:
    """The knobs of ``resnet-hub finetune`` (defaults fit a small dataset from scratch or from ImageNet weights).

    ``batch_size`` is per process (as in timm's train.py and torchrun scripts): N processes step on N times as many
    images. The fields in ``RECIPE`` change the weights a run produces, so resuming refuses a checkpoint whose
    recipe differs; the others (device, workers, compile) change only how fast it runs.
    """

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
    amp: bool = True  # mixed precision on CUDA only (bf16 where supported, else fp16 with a gradient scaler)
    workers: int | None = 0  # decoding processes per training process (0: in-process; None: from the CPU count)
    sync_bn: bool = False  # BatchNorm statistics over the global batch when several processes train
    compile: bool = False  # torch.compile the model (worth it on CUDA for long runs)
    channels_last: bool = True  # NHWC memory format on CUDA (faster convolutions on tensor cores)

    RECIPE = ("epochs", "batch_size", "lr", "opt", "momentum", "weight_decay", "warmup_epochs", "val_split",
              "seed", "amp", "sync_bn")

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
        cpus = usable_cpus()
        if self.workers is not None and (self.workers < 0 or self.workers > cpus):
            raise TrainingError(f"--workers {self.workers}: this machine lets this process use {cpus} CPU(s); "
                                f"pass 0..{cpus} (0 decodes images in the training process)")

    def resolved_workers(self, world_size: int = 1) -> int:
        """``workers``, or when None the input pipeline's default for this process's share of the CPUs."""
        if self.workers is not None:
            return self.workers
        from .input_pipeline import default_workers

        return default_workers(max(1, usable_cpus() // world_size))

    def recipe(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.RECIPE}


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask a container or taskset sets, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
    sha256: str  # "" on ranks other than 0, which write nothing
    architecture: str
    classes: list[str]
    epochs: list[EpochRecord]
    record: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    checkpoint: Path | None = None
    is_main: bool = True  # rank 0 (the process that wrote the files and should report)

    @property
    def val_top1(self) -> float:
        return self.epochs[-1].val_top1

    @property
    def val_top5(self) -> float:
        return self.epochs[-1].val_top5


# Called after every epoch on every rank: (record, checkpoint file or None, final output or None). Rank 0 passes
# the files it wrote; Ray Train's workers report them to Ray from here.
EpochFiles = Callable[[EpochRecord, "Path | None", "Path | None"], None]


def seed_everything(seed: int) -> None:
    """Python's RNG drives timm's random crops, torch's the init and shuffling, numpy's some transforms."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def check_output(output: str | os.PathLike, *, overwrite: bool, resume: bool) -> Path:
    """Refuse an output that cannot be written, before any training: not .safetensors, a folder, an existing
    file without --force, a folder that cannot be created or written, or an interrupted run's checkpoint that
    would be overwritten. Creates the output's folder (a probe file is written there and removed)."""
    from .checkpoint import checkpoint_path, read_info
    from ..leftovers import TMP_SUFFIX, tmp_prefix
    from ..weights.io import unwritable_output

    output = Path(output)
    if output.suffix != ".safetensors":
        raise TrainingError(f"--output must be a .safetensors file, got {output}")
    if output.is_dir():
        raise TrainingError(f"--output {output} is a folder; name the .safetensors file to write, e.g. "
                            f"{output / 'model.safetensors'}")
    if output.exists() and not overwrite:
        raise TrainingError(f"{output} already exists; pass --force to replace it")
    checkpoint = checkpoint_path(output)
    if checkpoint.exists() and not resume and not overwrite:
        epoch, info = read_info(checkpoint)
        of = f"/{info['recipe']['epochs']}" if isinstance(info.get("recipe"), dict) else ""
        raise TrainingError(f"{checkpoint} holds the checkpoint of an earlier run (epoch {epoch}{of} done); pass "
                            "--resume to continue it, or --force to start again and replace it")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=tmp_prefix(output.name), suffix=TMP_SUFFIX, dir=output.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise unwritable_output(output, exc, f"cannot create files in {output.parent}") from exc
    return output


def finetune(
    name: str,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    options: FinetuneOptions = FinetuneOptions(),
    overwrite: bool = False,
    resume: bool = False,
    engine: str | None = None,
    on_step: Callable[[StepUpdate], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    on_files: EpochFiles | None = None,
) -> FinetuneResult:
    """Train ``name`` on ``data`` (an image folder or ``digits``) and write ``output`` (safetensors).

    The head is replaced to fit the data's classes; the backbone starts from ``weights`` / ``pretrained`` (or
    random init). After every epoch a checkpoint is written atomically beside ``output`` (see
    ``checkpoint.py``); ``resume`` continues from it. The output itself is written once, atomically, after the
    last epoch. Under torchrun or Ray Train (a process group is set up) this is one rank of a data-parallel
    run: only rank 0 writes files and calls ``on_step`` / ``on_epoch`` / ``on_note``.
    """
    import torch

    from . import distributed
    from .checkpoint import checkpoint_path, load_checkpoint
    from ..leftovers import sweep_stale_tmp

    options.validate()
    output = check_output(output, overwrite=overwrite, resume=resume)
    if options.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
    checkpoint_file = checkpoint_path(output)
    state = load_checkpoint(checkpoint_file) if resume else None
    ctx = distributed.setup(options.device, engine)
    try:
        if ctx.is_main:
            sweep_stale_tmp(output.parent)  # temporary files of killed runs (ours: after every epoch)
        else:
            on_step = on_epoch = on_note = None
        return _finetune(name, data, output, checkpoint_file, state, ctx, weights=weights, pretrained=pretrained,
                         options=options, overwrite=overwrite, on_step=on_step, on_epoch=on_epoch, on_note=on_note,
                         on_files=on_files)
    finally:
        distributed.teardown(ctx)


def _finetune(name, data, output: Path, checkpoint_file: Path, state, ctx, *, weights, pretrained, options,
              overwrite, on_step, on_epoch, on_note, on_files) -> FinetuneResult:
    from ..zoo.model_loading import data_config_of

    wall_start = time.perf_counter()
    train_images = open_labelled(data, "train", val_split=options.val_split, seed=options.seed)
    val_images = open_labelled(data, "val", val_split=options.val_split, seed=options.seed)

    seed_everything(options.seed)
    loaded = _initial_model(name, weights, pretrained, len(train_images.classes))
    preprocessing = at_input_size(loaded.preprocessing, options.img_size or loaded.preprocessing.input_size[-1])
    recipe = dict(options.recipe(), architecture=loaded.architecture, classes=list(train_images.classes),
                  img_size=preprocessing.input_size[-1], base_weights_sha256=loaded.weights_sha256,
                  base_weights=loaded.weights)
    if state is not None:
        _check_resumable(checkpoint_file, state.info, recipe)
    config = data_config_of(preprocessing)
    train_loader, val_loader, sampler = _loaders(train_images, val_images, config, options, ctx)
    try:
        return _train(loaded, ctx, options, state, checkpoint_file, output, train_images, val_images, preprocessing,
                      recipe, train_loader, val_loader, sampler, wall_start, data, on_step, on_epoch, on_note,
                      on_files)
    finally:
        train_loader.close()
        val_loader.close()


def _train(loaded, ctx, options, state, checkpoint_file, output, train_images, val_images, preprocessing, recipe,
           train_loader, val_loader, sampler, wall_start, data, on_step, on_epoch, on_note, on_files):
    import torch

    from ..weights.io import save_weights

    device = torch.device(f"cuda:{ctx.local_rank}" if options.device == "cuda" else "cpu")
    if len(train_loader) == 0:
        raise TrainingError(f"No training images in {data}")

    raw = loaded.model.to(device)
    if options.sync_bn and ctx.distributed:
        from .distributed import sync_batchnorm

        raw = sync_batchnorm(raw, device.type)
    if device.type == "cuda" and options.channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    net = raw
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(raw, device_ids=[device.index] if device.type == "cuda" else None)
    if options.compile:
        net = torch.compile(net)
    fit = _Fit(raw, net, train_loader, val_loader, sampler, options, ctx, device)
    start_epoch = 0
    history: list[EpochRecord] = []
    if state is not None:
        start_epoch, history = fit.restore(state, on_note)
    base = dict(
        data=dict(train=train_images.describe() | {"classes": None}, val=val_images.describe() | {"classes": None}),
        base_weights=loaded.weights,
        base_weights_sha256=loaded.weights_sha256,
        epochs=options.epochs,
        img_size=preprocessing.input_size[-1],
        options={k: v for k, v in asdict(options).items() if k not in ("device",)},
        device=options.device,
    )
    metadata = {
        LABEL_NAMES_KEY: list(train_images.classes),
        PREPROCESSING_KEY: preprocessing.to_json(),
        "num_classes": str(len(train_images.classes)),
    }
    sha = ""
    record: dict[str, Any] = {}
    for epoch in range(start_epoch, options.epochs):
        history.append(fit.epoch(epoch, on_step))
        if not ctx.is_main:
            if on_files:
                on_files(history[-1], None, None)
            continue
        record = dict(base, **_result_fields(history), run=fit.run_record(wall_start, state),
                      skipped_files=len(fit.skipped))  # rank 0's share of the data
        checkpoint_written = fit.save(checkpoint_file, epoch + 1, history, recipe, record)
        written = None
        if epoch + 1 == options.epochs:
            sha = save_weights(raw, output, architecture=loaded.architecture, overwrite=True,
                               metadata=dict(metadata, **{TRAINING_KEY: record}))
            written = output
        if on_epoch:
            on_epoch(history[-1])
        if on_files:
            on_files(history[-1], checkpoint_written, written)
    if start_epoch >= options.epochs and ctx.is_main:  # the checkpoint is of a finished run: write its weights
        record = dict(base, **_result_fields(history), run=state.info.get("record", {}).get("run", {}))
        sha = save_weights(raw, output, architecture=loaded.architecture, overwrite=True,
                           metadata=dict(metadata, **{TRAINING_KEY: record}))
    raw.eval().cpu()
    skipped = dict(fit.skipped)
    return FinetuneResult(output=output, sha256=sha, architecture=loaded.architecture,
                          classes=list(train_images.classes), epochs=history, record=record, skipped=skipped,
                          ignored=train_images.ignored + val_images.ignored, checkpoint=checkpoint_file,
                          is_main=ctx.is_main)


def _result_fields(history: list[EpochRecord]) -> dict[str, Any]:
    return dict(val_top1=history[-1].val_top1, val_top5=history[-1].val_top5, history=[asdict(h) for h in history])


def _check_resumable(path: Path, info: dict[str, Any], recipe: dict[str, Any]) -> None:
    """A checkpoint continues only the run that wrote it: same architecture, classes and recipe."""
    saved = info.get("recipe") or {}
    if saved.get("architecture") != recipe["architecture"]:
        raise TrainingError(f"{path} is a checkpoint of a {saved.get('architecture')} fine-tune, not "
                            f"{recipe['architecture']}; resume it with that model name, or pass another --output")
    if saved.get("classes") != recipe["classes"]:
        old, new = saved.get("classes") or [], recipe["classes"]
        raise TrainingError(f"{path} was trained on other classes ({len(old)}: {old[:6]}"
                            f"{' ...' if len(old) > 6 else ''}) than --data has ({len(new)}: {new[:6]}"
                            f"{' ...' if len(new) > 6 else ''}); resume with the same data, or pass another --output")
    differ = [key for key in recipe if key not in ("architecture", "classes") and saved.get(key) != recipe[key]]
    if differ:
        listed = ", ".join(f"{_flag(k)} {saved.get(k)!r} then, {recipe[k]!r} now" for k in differ)
        raise TrainingError(f"{path} was written with other training options ({listed}); resume with the same "
                            "options, or pass --force to start again without --resume")


def _flag(key: str) -> str:
    return {"base_weights_sha256": "starting weights (sha256)", "base_weights": "starting weights",
            "amp": "--amp", "sync_bn": "--sync-bn"}.get(key, "--" + key.replace("_", "-"))


def _loaders(train_images, val_images, config, options: FinetuneOptions, ctx):
    """(train loader, val loader, train sampler): the one place that builds loaders (``input_pipeline``).

    The training order and augmentation are functions of (seed, epoch, index) (see ``sampling.py``); a last
    batch of one image per process is dropped, since BatchNorm cannot normalise a single value per channel
    (ResNets reach 1x1 feature maps at small input sizes).
    """
    from .input_pipeline import make_loader
    from .sampling import EpochOrder, SeededImages, Shard

    seeded = SeededImages(train_images, options.seed)
    sampler = EpochOrder(len(train_images), seed=options.seed, rank=ctx.rank, world_size=ctx.world_size)
    drop_last = len(sampler) % options.batch_size == 1 and not (options.sync_bn and ctx.distributed)
    workers = options.resolved_workers(ctx.world_size)
    train_loader = make_loader(seeded, seeded.transform(train_transform(config, hflip=hflip_for(train_images))),
                               options.batch_size, workers=workers, sampler=sampler, drop_last=drop_last,
                               device=options.device, fail_fast=None)
    val_loader = make_loader(val_images, eval_transform(config), max(options.batch_size, 64), workers=workers,
                             sampler=Shard(len(val_images), ctx.rank, ctx.world_size), device=options.device,
                             fail_fast=None)
    return train_loader, val_loader, sampler


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


class _Fit:
    """The optimisation state of one run and the epoch loop over it (train, reduce, validate, checkpoint)."""

    def __init__(self, raw, net, train_loader, val_loader, sampler, options: FinetuneOptions, ctx, device) -> None:
        import torch
        from timm.optim import create_optimizer_v2
        from timm.scheduler import create_scheduler_v2

        self.raw, self.net, self.options, self.ctx, self.device = raw, net, options, ctx, device
        self.train_loader, self.val_loader, self.sampler = train_loader, val_loader, sampler
        momentum: dict[str, Any] = {"momentum": options.momentum} if options.opt == "sgd" else {}
        self.optimizer = create_optimizer_v2(raw, opt=options.opt, lr=options.lr, weight_decay=options.weight_decay,
                                             **momentum)
        warmup = min(options.warmup_epochs, max(options.epochs - 1, 0))
        self.scheduler, _ = create_scheduler_v2(self.optimizer, sched="cosine", num_epochs=options.epochs,
                                                warmup_epochs=warmup, warmup_lr=options.lr / 10,
                                                min_lr=options.lr / 100, step_on_epochs=False,
                                                updates_per_epoch=len(train_loader))
        self.loss_fn = torch.nn.CrossEntropyLoss()
        cuda = device.type == "cuda"
        self.autocast = cuda and options.amp
        self.amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast and self.amp_dtype == torch.float16)
        self.updates = 0
        self.images = 0  # training images stepped on, all ranks together
        self.train_seconds = 0.0
        self.resumed_from: int | None = None
        self.skipped_batches = 0
        self.skipped: dict[str, str] = {}  # unreadable files met, with their reason

    # --- checkpoints ---------------------------------------------------------------------------------------

    def restore(self, state, on_note) -> tuple[int, list[EpochRecord]]:
        from .checkpoint import restore_rng
        from ..weights.io import load_state_dict_into

        load_state_dict_into(self.raw, state.model, source="checkpoint")
        self.optimizer.load_state_dict(state.optimizer)
        info = state.info
        saved_world = int(info.get("world_size", 1))
        if saved_world == self.ctx.world_size:
            self.scheduler.load_state_dict(state.scheduler)
            self.updates = int(info.get("updates", state.epoch * len(self.train_loader)))
        else:
            # the schedule is a function of progress: rebuilt for this world size's steps per epoch
            self.updates = state.epoch * len(self.train_loader)
            if on_note:
                b = self.options.batch_size
                on_note(f"resuming after epoch {state.epoch} with {self.ctx.world_size} process(es) instead of "
                        f"{saved_world}: each step now takes {b * self.ctx.world_size} images instead of "
                        f"{b * saved_world} ({len(self.train_loader)} steps per epoch), the learning-rate schedule "
                        "continues at the same point of training, and the result will differ from an "
                        f"uninterrupted {saved_world}-process run")
        if state.scaler:
            self.scaler.load_state_dict(state.scaler)
        self.scheduler.step_update(num_updates=self.updates)
        restore_rng(state.rng)
        run = (info.get("record") or {}).get("run") or {}
        self.images = int(run.get("images", 0))
        self.train_seconds = float(run.get("train_seconds", 0.0))
        self.resumed_from = state.epoch
        history = [EpochRecord(**h) for h in info.get("history", [])]
        if on_note and state.epoch < self.options.epochs:
            on_note(f"resuming after epoch {state.epoch} of {self.options.epochs} from its checkpoint")
        return state.epoch, history

    def save(self, path: Path, epoch: int, history, recipe, record) -> Path:
        from .checkpoint import TrainingState, capture_rng, save_checkpoint

        info = dict(recipe=recipe, world_size=self.ctx.world_size, engine=self.ctx.engine, updates=self.updates,
                    sampler_epoch=epoch, history=[asdict(h) for h in history], record=record)
        state = TrainingState(epoch=epoch, model=self.raw.state_dict(), optimizer=self.optimizer.state_dict(),
                              scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict(),
                              rng=capture_rng(), info=info)
        return save_checkpoint(path, state)

    def run_record(self, wall_start: float, state) -> dict[str, Any]:
        """How the run ran, for the weights' training record and the model card."""
        import torch

        previous = ((state.info.get("record") or {}).get("run") or {}) if state is not None else {}
        wall = float(previous.get("wall_seconds", 0.0)) + time.perf_counter() - wall_start
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        else:
            import platform

            name = platform.processor() or platform.machine()
        import torch.distributed as dist

        backend = dist.get_backend() if self.ctx.distributed and dist.is_initialized() else None
        return dict(engine=self.ctx.engine, world_size=self.ctx.world_size, backend=backend, device=self.device.type,
                    device_name=name, images=self.images, train_seconds=round(self.train_seconds, 3),
                    throughput_img_s=round(self.images / self.train_seconds, 2) if self.train_seconds else None,
                    wall_seconds=round(wall, 3), resumed_after_epoch=self.resumed_from,
                    precision=str(self.amp_dtype).replace("torch.", "") if self.autocast else "fp32",
                    channels_last=self.device.type == "cuda" and self.options.channels_last,
                    compiled=self.options.compile, workers=self.train_loader.workers)

    # --- one epoch -----------------------------------------------------------------------------------------

    def epoch(self, epoch: int, on_step) -> EpochRecord:
        import torch

        from .distributed import all_agree, all_sum

        options, ctx, device = self.options, self.ctx, self.device
        start = time.perf_counter()
        self.sampler.set_epoch(epoch)
        self.net.train()
        seen: float = 0  # counts; all_sum hands them back as (exact) floats
        correct: float = 0
        loss_sum = 0.0
        steps = len(self.train_loader)
        memory = torch.channels_last if device.type == "cuda" and options.channels_last else torch.contiguous_format
        minimum = 1 if options.sync_bn and ctx.distributed else 2
        for step, batch in enumerate(self.train_loader.dataloader):  # every batch, empty ones too (ranks in step)
            self.skipped.update((s.path, s.reason) for s in batch.skipped)
            usable = len(batch) >= minimum  # unreadable files can shrink a batch
            if ctx.distributed:
                usable = all_agree(ctx, usable, device)  # every rank steps, or none (DDP's collectives)
            if not usable:
                self.skipped_batches += 1
                continue
            x = batch.inputs.to(device, non_blocking=True, memory_format=memory)
            y = batch.labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.autocast):
                logits = self.net(x)
                loss = self.loss_fn(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.updates += 1
            self.scheduler.step_update(num_updates=self.updates)
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(y)
            if on_step:
                on_step(StepUpdate(epoch + 1, options.epochs, step + 1, steps, loss_sum / seen, correct / seen))
        seen, correct, loss_sum = all_sum(ctx, [seen, correct, loss_sum], device)
        train_seconds = time.perf_counter() - start
        self.train_seconds += train_seconds
        self.images += int(seen)
        if not math.isfinite(loss_sum):
            raise TrainingError(f"The loss diverged (non-finite) in epoch {epoch + 1}; lower --lr (now {options.lr})")
        self.scheduler.step(epoch + 1)
        val_top1, val_top5 = self.validate()
        return EpochRecord(epoch=epoch + 1, train_loss=loss_sum / max(seen, 1), train_top1=correct / max(seen, 1),
                           val_top1=val_top1, val_top5=val_top5, lr=self.optimizer.param_groups[0]["lr"],
                           seconds=time.perf_counter() - start)

    def validate(self) -> tuple[float, float]:
        """Top-1 / top-5 over the whole validation set: each rank scores its shard, the counts are summed."""
        import torch

        from .distributed import all_sum

        model, device = self.raw, self.device
        model.eval()
        n: float = 0  # counts; all_sum hands them back as (exact) floats
        top1: float = 0
        top5: float = 0
        with torch.inference_mode(), torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.autocast):
            for batch in self.val_loader.dataloader:
                self.skipped.update((s.path, s.reason) for s in batch.skipped)
                if not len(batch):
                    continue
                logits = model(batch.inputs.to(device, non_blocking=True)).float()
                y = batch.labels.to(device)
                k = min(5, logits.shape[1])
                best = logits.topk(k, dim=1).indices
                top1 += int((best[:, 0] == y).sum())
                top5 += int((best == y[:, None]).any(dim=1).sum())
                n += len(y)
        n, top1, top5 = all_sum(self.ctx, [n, top1, top5], device)
        if n == 0:
            raise TrainingError("No readable validation images")
        return top1 / n, top5 / n


__all__ = ["DIGITS", "EpochRecord", "FinetuneOptions", "FinetuneResult", "StepUpdate", "check_output", "finetune",
           "LabelledImages", "usable_cpus"]
