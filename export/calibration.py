"""Calibration images for INT8: from a folder (flat, or one sub-folder per class) or the built-in ``digits``,
preprocessed exactly as the weights expect.

The transform is timm's eval transform built from the same data config that the manifest records, so the
activation ranges the quantizer measures are those the deployed model will see. Image reading (EXIF, bit depth,
grey to RGB) is :mod:`resnet_hub.tasks.data`'s, like everywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import numpy as np

from resnet_hub.tasks.data import DIGITS, IMAGE_SUFFIXES, open_calibration
from resnet_hub.errors import DatasetError

from .errors import ExportOptionError

__all__ = ["IMAGE_SUFFIXES", "find_images", "load_calibration", "load_calibration_batch"]


def find_images(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files of a calibration source (checks it before any slow work); ``digits`` has no files."""
    if str(folder) == DIGITS:
        return []
    if not Path(folder).is_dir():
        raise ExportOptionError(f"Calibration folder not found: {folder}. Pass a folder of images or '{DIGITS}'")
    try:
        images = open_calibration(folder, limit)
    except DatasetError as exc:
        raise ExportOptionError(str(exc)) from exc
    # A folder's items are file paths (only the built-in digits are indexed by int).
    return [Path(cast(str, item)) for item, _ in images.items]


def load_calibration(source: str | os.PathLike, data_config: dict[str, Any], *, limit: int | None = 512,
                     workers: int | None = None) -> tuple[np.ndarray, int, int]:
    """(float32 (N, C, H, W) array after the eval transform, images used, files skipped as unreadable).

    Read through the input pipeline (worker processes, the one decoder of ``resnet_hub.tasks.data``) straight into
    one array of at most ``limit`` images: the quantizer needs them all at once, and ``limit`` bounds it."""
    if str(source) != DIGITS and not Path(source).exists():
        raise ExportOptionError(f"Calibration data not found: {source}. Pass a folder of images or '{DIGITS}'")
    from resnet_hub.tasks.data import eval_transform
    from resnet_hub.tasks.input_pipeline import make_loader

    try:
        images = open_calibration(source, limit)
        array: np.ndarray | None = None
        filled = 0
        with make_loader(images, eval_transform(data_config), 32, workers=workers) as loader:
            for batch in loader:
                if array is None:
                    array = np.empty((len(images), *batch.inputs.shape[1:]), dtype=np.float32)
                array[filled:filled + len(batch)] = batch.inputs.numpy()
                filled += len(batch)
            skipped = len(loader.skipped)
    except DatasetError as exc:
        raise ExportOptionError(f"Calibration data {source}: {exc}") from exc
    assert array is not None  # the loader raises DatasetError when nothing is readable
    return array[:filled], filled, skipped


def load_calibration_batch(folder: str | os.PathLike, data_config: dict[str, Any], *, limit: int | None = 512
                           ) -> np.ndarray:
    """All calibration images as one float32 (N, C, H, W) array after the eval transform."""
    return load_calibration(folder, data_config, limit=limit)[0]
