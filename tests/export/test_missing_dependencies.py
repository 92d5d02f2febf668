"""Missing optional packages: the command names the extra to install, exits 1 and writes nothing.

The packages are really made unimportable in a subprocess (``sys.modules[name] = None`` in a sitecustomize),
so the library's own import handling is what is tested.
"""

from __future__ import annotations

import pytest
from export_helpers import tree
from helpers.cli import run_cli

FAST = ("--img-size", "64", "64", "--exporter", "torchscript")


@pytest.mark.parametrize("blocked,fmt,needle", [
    (("onnxruntime",), "onnx", "pip install 'resnet-hub[onnx]'"),
    (("onnx",), "onnx", "pip install 'resnet-hub[onnx]'"),
    (("onnxscript",), "onnx", "'onnxscript' package"),
    (("tritonclient", "tritonclient.grpc"), "triton", "pip install 'resnet-hub[triton]'"),
    (("tensorrt",), "tensorrt", "pip install 'resnet-hub[tensorrt]'"),
])
def test_missing_package_names_the_extra_and_leaves_nothing(blocked, fmt, needle, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    proc = run_cli("export", "myresnet18", "--format", fmt, "--output", str(out), *FAST, blocked=blocked, cwd=work)
    assert proc.returncode == 1, proc.stdout
    assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert tree(out) == [] and not out.exists()


def test_tensorrt_message_says_a_gpu_is_needed(tmp_path):
    proc = run_cli("export", "myresnet18", "--format", "tensorrt", "--output", str(tmp_path / "o"), *FAST,
                   blocked=("tensorrt",), cwd=tmp_path)
    assert "NVIDIA GPU" in proc.stderr
