"""OpenVINO export directories wherever an export directory works: ``evaluate``, ``verify``, and Ray workers
(``predict --engine ray``), all through ``ExportDirectory`` (the one reader), against real oracles: the export's own
accuracy gate on the same images, the files' hashes, and local PyTorch prediction.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("openvino")

from helpers.cli import run_cli  # noqa: E402

from resnet_hub.export.directory import ExportDirectory, ExportDirectoryError  # noqa: E402
from resnet_hub.export.onnx import OnnxOptions  # noqa: E402
from resnet_hub.export.openvino import export_openvino  # noqa: E402


@pytest.fixture(scope="module")
def ov_dir(digits_model, tmp_path_factory):
    """The digits model exported to OpenVINO int8, gated on the digits val split."""
    out = tmp_path_factory.mktemp("ov") / "int8"
    export_openvino("myresnet18", out, OnnxOptions(precision="int8", calib_data="digits", calib_limit=128,
                                                   eval_data="digits"), weights=digits_model)
    return out


def test_export_directory_reader_runs_the_ir_as_recorded(ov_dir):
    export = ExportDirectory.open(ov_dir)
    assert export.format == "openvino" and export.graph_path.name == "model.xml"
    assert export.runtime == "OpenVINO (CPU)" and export.label_names == [str(i) for i in range(10)]
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    assert export.logits()(x).shape == (3, 10)
    with pytest.raises(ExportDirectoryError, match="CPU plugin"):
        export.logits("cuda")


def test_evaluate_on_the_directory_scores_what_the_export_gate_measured(ov_dir):
    proc = run_cli("evaluate", str(ov_dir), "--data", "digits", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    gate = json.loads((ov_dir / "manifest.json").read_text())["accuracy"]
    # Same images (the digits val split), same preprocessing, same runtime settings: the same top-1.
    assert report["n"] == gate["n"]
    assert report["top1"] == pytest.approx(gate["artifact_top1"], abs=1e-9), report


def test_verify_passes_and_then_names_a_changed_weights_file(ov_dir, tmp_path):
    proc = run_cli("verify", str(ov_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "model.xml" in proc.stdout + proc.stderr
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ov_dir, copy)
    data = bytearray((copy / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.bin").write_bytes(bytes(data))
    proc = run_cli("verify", str(copy))
    assert proc.returncode == 1 and "model.bin" in proc.stdout + proc.stderr


def test_ray_workers_predict_with_the_openvino_directory_like_local_pytorch(digits_model, tmp_path):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = pytest.importorskip("ray")
    from PIL import Image

    from resnet_hub.tasks.batch_predict import predict_with_ray, read_predictions
    from resnet_hub.export.batch_model import ExportBatchModel
    from resnet_hub.tasks.predict import build_predictor
    from sklearn.datasets import load_digits

    images = tmp_path / "images"
    images.mkdir()
    digits = load_digits()
    for i in range(4):  # real digits as 8-bit grey PNGs (light strokes on dark), as a client would have them
        pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(images / f"{i}.png")
    out = tmp_path / "fp32"
    export_openvino("myresnet18", out, OnnxOptions(), weights=digits_model)
    local = build_predictor("myresnet18", weights=digits_model).predict_paths([images], k=3)
    output = tmp_path / "predictions.jsonl"
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        result = predict_with_ray(ExportBatchModel(str(out)), [str(images)], output, k=3, batch_size=2,
                                  num_workers=1)
    finally:
        ray.shutdown()
    assert result.predicted == 4
    metadata, rows = read_predictions(output)
    assert metadata["runtime"] == "OpenVINO (CPU)"
    expected = {str(p.path): p for p in local.predictions}
    for row in rows:
        mine = expected[row["path"]]
        assert [t["index"] for t in row["topk"]] == list(mine.indices)
        assert [t["probability"] for t in row["topk"]] == pytest.approx(list(mine.probabilities), abs=1e-4)
