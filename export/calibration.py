"""Calibration images for INT8: read from a folder and preprocessed exactly as the weights expect.

The transform is timm's eval transform built from the same data config that the manifest records, so the
activation ranges ModelOpt measures are those the deployed model will see.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportOptionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def find_images(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted so calibration is reproducible)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportOptionError(f"Calibration folder not found: {folder}")
    images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ExportOptionError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}; INT8 calibration needs "
                                "representative images, ideally a few hundred from the deployment domain")
    return images[:limit] if limit else images


def load_calibration_batch(
    folder: str | os.PathLike, data_config: dict[str, Any], *, limit: int | None = 512
) -> np.ndarray:
    """All calibration images as one float32 (N, C, H, W) array after the eval transform."""
    from PIL import Image
    from timm.data import create_transform

    transform = create_transform(**{k: data_config[k] for k in ("input_size", "interpolation", "mean", "std",
                                                                 "crop_pct", "crop_mode") if k in data_config},
                                 is_training=False)
    arrays = []
    for path in find_images(folder, limit):
        try:
            with Image.open(path) as image:
                arrays.append(transform(image.convert("RGB")).numpy())
        except OSError as exc:
            raise ExportOptionError(f"Cannot read calibration image {path}: {exc}") from exc
    return np.stack(arrays).astype(np.float32)
