"""An export directory as a :class:`resnet_hub.batch_predict.BatchModel`: what Ray workers run for
``resnet-hub predict EXPORT_DIR SRC... --engine ray``.

The directory's ``manifest.json`` supplies the preprocessing and class names (so the data stage decodes exactly as
evaluation of that export does), and each worker opens ``model.onnx`` in ONNX Runtime with as many threads as
the CPUs it was given, or ``model.plan`` in TensorRT on the GPU it was given. It lives in the export layer
because it opens the export's runtimes; ``batch_predict`` only knows the protocol.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from resnet_hub.batch_predict import Logits, ModelDescription
from resnet_hub.errors import EvaluationError

from .runtime import is_pixel_input, manifest_data_config, onnx_logits

GRAPH_FILES = {"onnx": "model.onnx", "tensorrt": "model.plan"}


def is_export_dir(path: str | os.PathLike) -> bool:
    return Path(path).is_dir() and (Path(path) / "manifest.json").is_file()


@dataclass(frozen=True)
class ExportBatchModel:
    directory: str

    def _manifest(self) -> dict:
        manifest_path = Path(self.directory) / "manifest.json"
        if not manifest_path.is_file():
            raise EvaluationError(f"{self.directory} has no manifest.json; pass an export directory written by "
                                  "`resnet-hub export`, or a model name")
        manifest = json.loads(manifest_path.read_text())
        fmt = manifest.get("format")
        if fmt not in GRAPH_FILES or not (Path(self.directory) / GRAPH_FILES[fmt]).exists():
            raise EvaluationError(f"{self.directory} holds a '{fmt}' export without its model file; batch "
                                  "prediction runs ONNX (model.onnx) and TensorRT (model.plan) exports")
        return manifest

    def describe(self) -> ModelDescription:
        from resnet_hub.predict import class_names
        from resnet_hub.weights import sha256_of_file

        manifest = self._manifest()
        fmt = manifest["format"]
        model_info = manifest.get("model", {})
        num_classes = int(model_info.get("num_classes", 1000))
        names = model_info.get("label_names")
        labels = [str(n) for n in names] if names and len(names) == num_classes else class_names(num_classes)
        graph = Path(self.directory) / GRAPH_FILES[fmt]
        weights = manifest.get("weights", {})
        record = dict(model=str(self.directory), runtime="TensorRT" if fmt == "tensorrt" else "ONNX Runtime (CPU)",
                      architecture=model_info.get("name"), weights=weights.get("source"),
                      weights_sha256=weights.get("file_sha256"),
                      graph_sha256=sha256_of_file(graph) if graph.is_file() else None)
        return ModelDescription(manifest_data_config(manifest), labels, record,
                                num_gpus=1.0 if fmt == "tensorrt" else 0.0)

    def load(self, threads: int) -> Logits:
        manifest = self._manifest()
        directory = Path(self.directory)
        if manifest["format"] == "tensorrt":
            from .runtime import export_target

            return export_target(directory, "cuda").logits
        return onnx_logits(directory / "model.onnx", embedded_preprocessing=is_pixel_input(manifest),
                           data_config=manifest_data_config(manifest), threads=threads)
