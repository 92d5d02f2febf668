"""#23: evaluate and the export accuracy gate stream; their peak memory does not grow with the number of images.

Each run is a fresh child process reporting its own peak resident set (ru_maxrss). Images are small JPEGs that the
transform scales to 224 px (588 KiB per float32 image): holding 2,000 of them, as evaluate did, costs ~1.1 GiB.
A tiny model keeps the runs short; the data path is the one every model uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CHILD = """
import json, resource, sys
import torch
from resnet_hub.tasks.evaluate import Target, class_mapping, evaluate, prepare, torch_logits

mode, folder, onnx_path = sys.argv[1:4]
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 2)).eval()
config = dict(input_size=(3, 224, 224), interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
              crop_pct=1.0, crop_mode="center")
if mode == "evaluate":
    result = evaluate(Target("tiny", "PyTorch", torch_logits(model), config, ["a", "b"], 2), folder, batch_size=32,
                      workers=1)
    n = result.n
else:
    from resnet_hub.export.accuracy import accuracy_gate
    from resnet_hub.export.runtime import onnx_logits

    prepared = prepare(folder, config, lambda classes: class_mapping(classes, ["a", "b"], 2), workers=1)
    n = accuracy_gate(torch_logits(model), onnx_logits(onnx_path), prepared, precision="fp32",
                      runtime="ONNX Runtime", batch_size=32).n
print(json.dumps(dict(n=n, self_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      workers_kib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)))
"""


def _folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        cls = root / ("a" if i % 2 else "b")
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((30, 40, 3)) * 255).astype(np.uint8)).save(cls / f"{i:05d}.jpg", quality=80)
    return root


def _peak(tmp_path: Path, mode: str, folder: Path, onnx_path: Path) -> dict:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    proc = subprocess.run([sys.executable, str(script), mode, str(folder), str(onnx_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    small, large = _folder(root / "small", 250), _folder(root / "large", 2000)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 2)).eval()
    onnx_path = root / "tiny.onnx"
    torch.onnx.export(model, (torch.randn(2, 3, 224, 224),), str(onnx_path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    return small, large, onnx_path


@pytest.mark.parametrize("mode", ["evaluate", "gate"])
def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path, folders, mode):
    small, large, onnx_path = folders
    few, many = _peak(tmp_path, mode, small, onnx_path), _peak(tmp_path, mode, large, onnx_path)
    assert (few["n"], many["n"]) == (250, 2000)
    # 8x the images: holding them would add ~1 GiB; streaming stays within 1.25x (the bound).
    assert many["self_kib"] <= 1.25 * few["self_kib"], (few, many)
    assert many["workers_kib"] <= 1.25 * few["workers_kib"] + 20_000, (few, many)
