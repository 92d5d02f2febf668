"""An export directory as a :class:`resnet_hub.tasks.batch_predict.BatchModel`: what Ray workers run for
``resnet-hub predict EXPORT_DIR SRC... --engine ray``.

Both the driver (``describe``) and every worker (``load``) open the directory through
:class:`export.directory.ExportDirectory`, so the files are re-hashed against the manifest before anything is
served, and the preprocessing and class names are the ones evaluation of that export uses. Each worker runs the
graph with as many threads as the CPUs it was given (ONNX Runtime), or the engine on the GPU it was given
(TensorRT). It lives in the export layer because it opens the export's runtimes; ``batch_predict`` only knows the
protocol.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from resnet_hub.tasks.batch_predict import Logits, ModelDescription

from .directory import ExportDirectory
from .directory import is_export_dir as is_export_dir

__all__ = ["ExportBatchModel", "is_export_dir"]


@dataclass(frozen=True)
class ExportBatchModel:
    directory: str | os.PathLike

    def describe(self) -> ModelDescription:
        export = ExportDirectory.open(self.directory)
        return ModelDescription(export.data_config(), export.labels(), export.record(),
                                num_gpus=1.0 if export.needs_gpu else 0.0)

    def load(self, threads: int) -> Logits:
        export = ExportDirectory.open(self.directory)  # the files may have changed since the driver checked them
        return export.logits("cuda" if export.needs_gpu else "cpu", threads=threads)
