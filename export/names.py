"""The names every export format shares: tensor names, file names, formats and precisions.

This is the floor of ``export/``: it imports nothing from the package, and every format module (ONNX,
TensorRT, Triton, OpenVINO), the manifest, the export-directory reader and ``verify`` stand on it instead of
importing these names from one another (which is how ``onnx -> runtime -> tensorrt -> onnx`` once closed a circle).
"""

from __future__ import annotations

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_AXIS = "batch"

MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
QDQ_FILE = "model.qdq.onnx"  # ModelOpt's Q/DQ graph that TensorRT parses for an int8 engine
ENGINE_FILE = "model.plan"
RECORD_FILE = ENGINE_FILE + ".json"  # the engine's sidecar record (export/engine_record.py)
CONFIG_FILE = "config.pbtxt"  # Triton model configuration
README_FILE = "README.md"  # Triton model directory: how to serve and call it
LABELS_FILE = "labels.txt"
XML_FILE = "model.xml"  # OpenVINO IR: the graph (export/openvino.py)
BIN_FILE = "model.bin"  # OpenVINO IR: the weights beside it
# Triton's classification extension (label_filename): one class name per line

# Formats as a manifest records them; Triton model directories say which model they hold.
FORMAT_ONNX = "onnx"
FORMAT_TENSORRT = "tensorrt"
FORMAT_TRITON_ONNX = "triton-onnx"
FORMAT_TRITON_TENSORRT = "triton-tensorrt"
FORMAT_OPENVINO = "openvino"
# The model file a server loads, per manifest format (a Triton model directory keeps it in a version folder, e.g.
# ``1/model.onnx``). A new format module adds its entry here (e.g. "openvino": "model.xml").
GRAPH_FILES: dict[str, str] = {
    FORMAT_ONNX: ONNX_FILE,
    FORMAT_TENSORRT: ENGINE_FILE,
    FORMAT_TRITON_ONNX: ONNX_FILE,
    FORMAT_TRITON_TENSORRT: ENGINE_FILE,
    FORMAT_OPENVINO: XML_FILE,
}

PRECISIONS = ("fp32", "fp16", "int8")

# Image sizes an export accepts: 32 px is where a ResNet's last stage reaches 1x1; above 4096 px one image's
# activations alone take gigabytes (a 100000 px request ended in a MemoryError traceback).
MIN_IMG_SIZE = 32
MAX_IMG_SIZE = 4096


def data_file_name(onnx_name: str) -> str:
    """External-data file written beside ``onnx_name``; the graph refers to it by this exact name."""
    return f"{onnx_name}.data"
