"""Evaluation on Ray Data: ``resnet-hub evaluate --engine ray``.

It sits above both :mod:`resnet_hub.tasks.evaluate` (image selection, class mapping, the running tally) and
:mod:`resnet_hub.tasks.batch_predict` (Ray's decode tasks and model actors), so neither of those imports the other:
one pass over a labelled folder, decoded and classified by the workers of ``predict --engine ray``, counted on
the driver exactly as the local evaluation counts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .batch_predict import BatchModel, TorchBatchModel, _check_resources, _run, import_ray, ray_connection
from .data import SkippedFile
from ..errors import EvaluationError
from .evaluate import (
    Evaluation,
    OnProgress,
    Progress,
    Target,
    _jsonable,
    _Tally,
    class_mapping,
    evaluation_images,
)


def ray_model_for(
    target: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    device: str = "cpu",
) -> BatchModel:
    """The Ray workers' model for what ``resolve_target`` resolves locally: the BatchNorm-folded, channels-last copy
    (optimize=True) that the local evaluation scores too (``evaluate.torch_logits``), so both do the same
    arithmetic. Export directories: ``ExportBatchModel``."""
    path = Path(target)
    if path.is_dir():
        from ..export.batch_model import ExportBatchModel

        return ExportBatchModel(str(path))
    if path.suffix == ".safetensors":  # the file names its architecture: predict's builder reads it
        return TorchBatchModel(str(path), optimize=True, device=device)
    return TorchBatchModel(str(target), weights=str(weights) if weights else None, pretrained=pretrained,
                           optimize=True, device=device)


def evaluate_on_ray(
    target: Target,
    data: str | os.PathLike,
    *,
    ray_model: BatchModel,
    batch_size: int = 64,
    limit: int | None = None,
    num_workers: int = 1,
    address: str | None = None,
    num_cpus: int | None = None,
    on_progress: OnProgress | None = None,
) -> Evaluation:
    """:func:`evaluate` on Ray Data: the images of :func:`evaluation_images` go through the same two stages as
    ``predict --engine ray`` (``batch_predict.decode_batch`` tasks, ``batch_predict.Classifier`` actors holding
    ``ray_model``, which runs what ``target`` runs) and the same counts are kept on the driver, so the result
    equals the local one.

    Uses the Ray this process is connected to; else ``address``; else starts a local Ray (``num_cpus``) and
    shuts down what it started."""
    import logging

    if num_workers < 1 or batch_size < 1:
        raise EvaluationError("--num-workers and --batch-size must be >= 1")
    images = evaluation_images(data, target.training)
    if limit is not None and limit < len(images):
        images = images.subset(range(limit))
    if any(isinstance(item, int) for item, _ in images.items):
        raise EvaluationError(f"--engine ray reads image files; '{images.source}' is an in-memory dataset: "
                              "evaluate it without --engine ray")
    mapping = class_mapping(images.classes, target.label_names, target.num_classes)
    files = [str(item) for item, _ in images.items]
    labels = {path: label for path, (_, label) in zip(files, images.items)}
    ray = import_ray()
    description = ray_model.describe()
    tally = _Tally(images.classes, mapping)
    skipped: list[SkippedFile] = []
    with ray_connection(ray, address, num_cpus, logging_level=logging.WARNING):
        start = time.perf_counter()
        done = 0
        _check_resources(ray, num_workers, 1.0, description.num_gpus)
        for table in _run(ray, ray_model, description, files, 5, batch_size, num_workers, 1.0):
            rows = table.to_pydict()
            top, data_labels = [], []
            for path, indices, reason in zip(rows["path"], rows["indices"], rows["reason"]):
                if reason is not None:
                    skipped.append(SkippedFile(path, reason))
                else:
                    top.append(indices)
                    data_labels.append(labels[path])
            if top:
                tally.add_top(top, data_labels)
            done += table.num_rows
            if on_progress is not None:
                on_progress(Progress(done, len(files), len(skipped), time.perf_counter() - start))
    return tally.result(target=target.description, runtime=f"{target.runtime}, Ray Data ({num_workers} worker(s))",
                        data=images.describe(), preprocessing=_jsonable(target.data_config), skipped=skipped,
                        seconds=time.perf_counter() - start)
