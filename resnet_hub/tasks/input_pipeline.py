"""The one input pipeline: labelled images -> batches of model inputs, decoded in worker processes.

Fine-tuning, evaluation, the export accuracy gate, int8 calibration and ``verify``'s re-checks all read images
through :func:`make_loader`, so they decode the same way (:func:`resnet_hub.tasks.data.load_image`: EXIF, bit depth,
grey / palette to RGB), apply the weights' transform per image, and hold one batch at a time: memory does not
grow with the number of images (ImageNet's 50,000 validation images as one tensor would need ~30 GiB).

API (stable: other modules and helpers build on it)::

    make_loader(
        images: LabelledImages,            # resnet_hub.tasks.data.open_labelled(...) / open_calibration(...)
        transform: Callable[[PIL.Image], torch.Tensor],   # data.eval_transform(cfg) / data.train_transform(cfg)
        batch_size: int,
        *,
        workers: int | None = None,        # None: default_workers() (from os.sched_getaffinity); 0: in-process
        shuffle: bool = False,             # ignored when a sampler is given
        seed: int = 0,                     # shuffling order and the workers' random seeds
        sampler: torch.utils.data.Sampler | None = None,   # e.g. DistributedSampler(...) for DDP
        drop_last: bool = False,
        device: str = "cpu",               # "cuda...": pinned memory and deeper prefetch
        prefetch_factor: int | None = None,  # batches each worker keeps ready (default 2; 4 on CUDA)
        persistent_workers: bool = True,   # keep workers between epochs (only when workers > 0)
        fail_fast: int | None = 256,       # raise DatasetError when the first N images tried are all unreadable
    ) -> Loader

    loader = make_loader(...)
    with loader:                           # closing stops the worker processes (also on Ctrl-C / errors)
        for batch in loader:               # Batch(inputs, labels, indices, skipped); never empty
            batch.inputs                   # (n, C, H, W) float tensor, n <= batch_size
            batch.labels                   # (n,) int64 class indices of images.classes
            batch.indices                  # (n,) int64 positions in `images`
    loader.skipped                         # list[SkippedFile]: every unreadable file met so far, with its reason
    loader.seen, loader.readable           # images tried / decoded so far (counts, for progress and messages)
    len(loader)                            # batches per pass (an upper bound: all-unreadable batches are skipped)
    loader.total                           # images one pass visits (the sampler's share with a sampler)

Unreadable files are skipped, counted and reported with their reason, never fatal, except when nothing at all
can be read: then the loader fails within the first ``fail_fast`` images (seconds, whatever the folder's size)
or at the end of the pass with the count.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .data import ImageLoadError, LabelledImages, SkippedFile
from ..errors import DatasetError

if TYPE_CHECKING:
    import torch
    from PIL import Image as PILImage
    from torch.utils.data import Sampler

    from .sampling import SeededImages

__all__ = ["Batch", "ImageRecords", "Loader", "available_cpus", "collate_batch", "default_workers", "make_loader",
           "workers_warning"]

MAX_DEFAULT_WORKERS = 8


def available_cpus() -> int:
    """CPUs this process may run on (a container's or taskset's share, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_workers(cpus: int | None = None) -> int:
    """Decoding workers when the user names none: one CPU stays with the main process (it runs the model),
    the rest decode, at most 8 (beyond that one process rarely keeps up with collating); 0 on one CPU."""
    cpus = available_cpus() if cpus is None else cpus
    return max(0, min(MAX_DEFAULT_WORKERS, cpus - 1))


def workers_warning(workers: int) -> str | None:
    """A line to show when ``workers`` exceeds the CPUs (allowed: decoding may wait on disk, but it usually
    only adds processes competing for the same cores)."""
    cpus = available_cpus()
    if workers > cpus:
        return (f"--workers {workers} is more than the {cpus} CPU(s) this process may use; the extra workers "
                f"compete for the same cores (try --workers {default_workers(cpus)})")
    return None


@dataclass
class _Failed:
    index: int
    name: str
    reason: str


class ImageRecords:
    """A torch Dataset over ``(path, label)`` records: item ``i`` is decoded by :mod:`resnet_hub.tasks.data` and
    transformed, giving ``(tensor, label, i)``; an unreadable file gives a failure record instead of raising,
    so one bad file never stops a worker or a run."""

    def __init__(self, images: LabelledImages | SeededImages,
                 transform: Callable[["PILImage.Image"], "torch.Tensor"]) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        try:
            return self.transform(self.images.read(index)), self.images.label(index), index
        except ImageLoadError as exc:
            return _Failed(index, self.images.name_of(index), str(exc))


@dataclass
class Batch:
    """The readable images of one batch and the files of that batch that could not be read."""

    inputs: Any  # (n, C, H, W) float tensor; None when every file of the batch was unreadable
    labels: Any  # (n,) int64, indices into LabelledImages.classes
    indices: Any  # (n,) int64, positions in the LabelledImages
    skipped: list[SkippedFile] = field(default_factory=list)

    def __len__(self) -> int:
        return 0 if self.inputs is None else int(self.inputs.shape[0])

    def pin_memory(self) -> "Batch":  # called by the DataLoader's pinning thread on CUDA
        if self.inputs is None:
            return self
        return Batch(self.inputs.pin_memory(), self.labels.pin_memory(), self.indices, self.skipped)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """From a worker to the main process, the class numbers and positions travel as plain lists: every
        tensor crossing a process costs a shared-memory file and a socket handshake to pass its descriptor, and
        two of those per batch made the main process the bottleneck with every core decoding (measured with
        ``benchmarks/loader_throughput.py``: 0.98x timm's ``create_loader`` at 2 workers on 2 cores)."""
        if self.inputs is None:
            return (Batch, (None, None, None, self.skipped))
        return (_rebuild_batch, (self.inputs, self.labels.tolist(), self.indices.tolist(), self.skipped))


def _rebuild_batch(inputs: Any, labels: list[int], indices: list[int], skipped: list[SkippedFile]) -> Batch:
    import torch

    return Batch(inputs, torch.tensor(labels, dtype=torch.int64), torch.tensor(indices, dtype=torch.int64), skipped)


def collate_batch(samples: list) -> Batch:
    """Stack the readable samples; failures travel with the batch (workers are separate processes, so this is
    how their counts reach the main process)."""
    import torch

    kept = [s for s in samples if not isinstance(s, _Failed)]
    skipped = [SkippedFile(s.name, s.reason) for s in samples if isinstance(s, _Failed)]
    if not kept:
        return Batch(None, None, None, skipped)
    tensors = [s[0] for s in kept]
    out = None
    if torch.utils.data.get_worker_info() is not None:
        # In a worker, stack straight into shared memory (as torch's default_collate does): the batch then
        # crosses to the main process without another copy, and the worker's heap does not grow a batch-sized
        # hole per step (measured: +0.8 GiB worker RSS over 2,400 images at 224 px without it, +0.06 GiB with it).
        first = tensors[0]
        storage = first.untyped_storage()._new_shared(len(tensors) * first.numel() * first.element_size(),
                                                      device=first.device)
        out = first.new(storage).resize_(len(tensors), *first.shape)
    return Batch(torch.stack(tensors, out=out), torch.tensor([s[1] for s in kept], dtype=torch.int64),
                 torch.tensor([s[2] for s in kept], dtype=torch.int64), skipped)


def _worker_init(worker_id: int) -> None:  # noqa: ARG001  (DataLoader's signature)
    """Ctrl-C reaches every process of the terminal's group: workers ignore it and the main process shuts them
    down (the CLI's SIGINT handler, inherited by fork, would otherwise print 'Interrupted.' once per worker).
    Seeds: torch already seeds ``random``, ``numpy`` and ``torch`` per worker from the loader's generator."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.excepthook = _quiet_when_the_main_process_left


def _quiet_when_the_main_process_left(kind: type[BaseException], error: BaseException,
                                      tb: TracebackType | None) -> None:
    """A worker hands each batch's shared memory to the main process through a socket served by a background
    thread (``multiprocessing.resource_sharer``, which reports its errors through ``sys.excepthook``). When the
    main process exits mid-handshake (Ctrl-C), that thread's ``ConnectionResetError`` would print a traceback
    after 'Interrupted.': the consumer is gone and nothing is lost, so only that case is silenced; every other
    error is printed as usual."""
    frames = traceback.extract_tb(tb) if tb is not None else []
    from_sharer = bool(frames) and frames[0].filename.endswith("resource_sharer.py")
    if from_sharer and isinstance(error, (ConnectionError, EOFError)):
        return
    sys.__excepthook__(kind, error, tb)


class Loader:
    """Iterates :class:`Batch` es over a DataLoader and keeps the run's counts (see the module docstring)."""

    def __init__(self, dataloader, images: LabelledImages | SeededImages, total: int, fail_fast: int | None) -> None:
        self.dataloader = dataloader
        self.images = images
        self.total = total
        self.fail_fast = fail_fast
        self.skipped: list[SkippedFile] = []
        self.seen = 0
        self.readable = 0
        self._iterator = None

    @property
    def workers(self) -> int:
        return int(self.dataloader.num_workers)

    @property
    def batch_size(self) -> int:
        return int(self.dataloader.batch_size)

    def __len__(self) -> int:
        return len(self.dataloader)

    def __iter__(self) -> Iterator[Batch]:
        self.skipped, self.seen, self.readable = [], 0, 0
        self._iterator = iterator = iter(self.dataloader)
        for batch in iterator:
            self.seen += len(batch) + len(batch.skipped)
            self.readable += len(batch)
            self.skipped.extend(batch.skipped)
            if not self.readable and self.fail_fast is not None and self.seen >= min(self.fail_fast, self.total):
                self.close()
                raise DatasetError(self._nothing_readable(partial=self.seen < self.total))
            if len(batch):
                yield batch
        if not self.readable and self.seen:
            raise DatasetError(self._nothing_readable(partial=False))

    def _nothing_readable(self, partial: bool) -> str:
        where = f"{self.images.source} ({self.images.split})"
        example = f" (e.g. {self.skipped[0].path}: {self.skipped[0].reason})" if self.skipped else ""
        if partial:
            return (f"None of the first {self.seen} of {self.total} images of {where} could be read{example}; "
                    "stopped early instead of trying every file. Check that the files are images PIL can open")
        return f"No readable images in {where}; {len(self.skipped)} file(s) could not be decoded{example}"

    def close(self) -> None:
        """Stop the worker processes now (persistent workers otherwise live as long as the loader)."""
        iterator, self._iterator = self._iterator, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        persistent = getattr(self.dataloader, "_iterator", None)
        if persistent is not None and hasattr(persistent, "_shutdown_workers"):
            persistent._shutdown_workers()
            self.dataloader._iterator = None

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def make_loader(
    images: LabelledImages | SeededImages,
    transform: Callable[["PILImage.Image"], "torch.Tensor"],
    batch_size: int,
    *,
    workers: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    sampler: "Sampler | None" = None,
    drop_last: bool = False,
    device: str = "cpu",
    prefetch_factor: int | None = None,
    persistent_workers: bool = True,
    fail_fast: int | None = 256,
) -> Loader:
    """A :class:`Loader` over ``images``: decoding and ``transform`` run in ``workers`` processes.

    ``workers=None`` takes :func:`default_workers`; ``0`` decodes in this process (no fork: for tiny sets and
    tests). Shuffling and the workers' random streams follow ``seed``, so a run is reproducible for a fixed
    worker count. On CUDA (``device`` starting with ``cuda``) batches come in pinned memory, ``prefetch_factor``
    (default 4 there, 2 otherwise) batches ahead per worker, so host-to-device copies can overlap
    (``inputs.to(device, non_blocking=True)``).
    """
    import torch
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise DatasetError(f"batch size must be >= 1, got {batch_size}")
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise DatasetError(f"--workers must be >= 0, got {workers}")
    cuda = str(device).startswith("cuda")
    options: dict[str, Any] = {}
    if workers > 0:
        options.update(persistent_workers=persistent_workers, worker_init_fn=_worker_init,
                       prefetch_factor=prefetch_factor or (4 if cuda else 2))
    # ImageRecords is a map-style dataset by protocol (__len__ / __getitem__), not a torch Dataset subclass.
    dataloader: DataLoader[Any] = DataLoader(ImageRecords(images, transform),  # type: ignore[arg-type]
                            batch_size=batch_size,
                            shuffle=shuffle if sampler is None else False, sampler=sampler, drop_last=drop_last,
                            num_workers=workers, collate_fn=collate_batch, pin_memory=cuda,
                            generator=torch.Generator().manual_seed(seed), **options)
    total = len(sampler) if sampler is not None else len(images)  # type: ignore[arg-type]
    if drop_last:
        total = min(total, len(dataloader) * batch_size)
    return Loader(dataloader, images, total, fail_fast)
