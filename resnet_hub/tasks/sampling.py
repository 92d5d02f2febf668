"""Which image each training step sees, and which random crop of it: functions of (seed, epoch, index) only.

That one rule is what makes fine-tuning resumable bit for bit and the same across process counts:

- the order of an epoch is ``torch.randperm`` seeded with ``seed + epoch`` (``DistributedSampler``'s rule; one
  process is its one-replica case), so epoch 7 after a restart is epoch 7 of an uninterrupted run, and rank r of
  W processes takes every W-th image of that same order;
- the augmentation of an image is drawn from RNGs seeded with (seed, epoch, index) just before its transform
  runs, in whatever process (main, DataLoader worker, rank) decodes it; the caller's RNG states are restored
  afterwards. So crops do not depend on worker count, on how many images came before in this process, or on
  RNG state that a restart cannot bring back from inside worker processes.

The sampler hands ``(epoch, index)`` keys to the dataset (:class:`SeededImages`), so the epoch reaches persistent
workers too.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DistributedSampler, Sampler

_MASK = (1 << 63) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one image of one epoch (a mixing hash: neighbouring indices get unrelated streams)."""
    value = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & _MASK
    value ^= value >> 31
    return (value * 0xD6E8FEB86659FD93) & _MASK


class EpochOrder(Sampler):
    """This rank's share of the epoch's seeded order, as ``(epoch, index)`` keys; ``set_epoch`` moves on."""

    def __init__(self, size: int, *, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        # Any sized sequence works: DistributedSampler reads only len() of its dataset.
        self.order: DistributedSampler[int] = DistributedSampler(
            range(size), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,  # type: ignore[arg-type]
            drop_last=False)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(i)) for i in self.order)


class Shard(Sampler):
    """Every ``world_size``-th index from ``rank``, each index exactly once over all ranks (evaluation: no
    padding duplicates, so summed counts are exact)."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, size, world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


class SeededImages:
    """LabelledImages read by ``(epoch, index)`` keys, whose transform draws from RNGs seeded for that key.

    The input pipeline's dataset calls ``read(key)`` and then the transform on the same worker, so ``read``
    notes the image's seed and :meth:`transform` seeds python's, numpy's and torch's RNGs with it around the
    wrapped transform (restoring them after): the random crop and flip are the same wherever and whenever the
    image is decoded.
    """

    def __init__(self, images: Any, seed: int) -> None:
        self.images = images
        self.seed = seed
        self._pending = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getattr__(self, name: str) -> Any:  # source, split, classes, describe(), ...
        if name == "images":
            raise AttributeError(name)
        return getattr(self.images, name)

    @staticmethod
    def _split(key: "tuple[int, int] | int") -> tuple[int, int]:
        return key if isinstance(key, tuple) else (0, int(key))

    def read(self, key):
        epoch, index = self._split(key)
        self._pending = sample_seed(self.seed, epoch, index)
        return self.images.read(index)

    def label(self, key) -> int:
        return self.images.label(self._split(key)[1])

    def name_of(self, key) -> str:
        return self.images.name_of(self._split(key)[1])

    def transform(self, inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return _SeededTransform(self, inner)


class _SeededTransform:
    def __init__(self, images: SeededImages, inner: Callable[[Any], Any]) -> None:
        self.images = images
        self.inner = inner

    def __call__(self, image):
        value = self.images._pending
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(value)
        np.random.seed(value & 0xFFFFFFFF)
        torch.default_generator.manual_seed(value)  # CPU only: transforms draw from it
        try:
            return self.inner(image)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])
