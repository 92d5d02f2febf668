"""Whole labelled sets as one tensor, for tests that hand a runtime every image at once (TensorRT builders,
calibration arrays). The product itself streams (``resnet_hub.tasks.input_pipeline``): memory that grows with the
number of images is for small test sets only."""

from __future__ import annotations

import torch

from resnet_hub.errors import DatasetError
from resnet_hub.tasks.data import ImageLoadError, LabelledImages, SkippedFile


def stacked(images: LabelledImages, transform, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  list[SkippedFile]]:
    """All (or the first ``limit``) readable images as one (N, C, H, W) tensor with labels and the files skipped."""
    tensors, labels, skipped = [], [], []
    for index in range(len(images) if limit is None else min(limit, len(images))):
        try:
            tensors.append(transform(images.read(index)))
            labels.append(images.label(index))
        except ImageLoadError as exc:
            skipped.append(SkippedFile(images.name_of(index), str(exc)))
    if not tensors:
        raise DatasetError(f"No readable images in {images.source} ({images.split}); "
                           f"{len(skipped)} file(s) could not be decoded")
    return torch.stack(tensors), torch.tensor(labels), skipped
