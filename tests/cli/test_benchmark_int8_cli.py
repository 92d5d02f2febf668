"""`resnet-hub benchmark` with the int8 and fp16 ONNX Runtime backends (speed itself is never asserted)."""

from __future__ import annotations

import json

from test_benchmark_cli import TINY, check_numbers_come_from_measurements
from helpers.cli import run_cli


def test_int8_and_fp16_backends_run_against_their_own_ceilings():
    result = run_cli("benchmark", "myresnet18", "--backends", "onnxruntime,onnxruntime-fp16,onnxruntime-int8",
                     "--calib-limit", "8", *TINY)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    results = {r["backend"]: r for r in report["results"]}
    assert list(results) == ["timm", "onnxruntime", "onnxruntime-fp16", "onnxruntime-int8"]
    assert all(r["available"] for r in results.values()), [r["reason"] for r in results.values()]
    int8 = results["onnxruntime-int8"]
    assert "calibrated on 8 images from 'digits'" in int8["description"]
    assert int8["arithmetic"] == "int8" and results["onnxruntime-fp16"]["arithmetic"] == "fp32"
    assert report["ceilings"]["int8"]["source"] == report["ceilings"]["fp32"]["source"] == "measured"
    assert any("MatMulInteger" in name for name in report["ceilings"]["int8"]["candidates"])
    # Same weights: fp32/fp16 reproduce the eager logits closely; int8 is an approximation, but of these logits.
    assert results["onnxruntime"]["max_abs_diff"] < 1e-3 and results["onnxruntime-fp16"]["max_abs_diff"] < 0.05
    assert 0 < int8["max_abs_diff"] < 1.0
    check_numbers_come_from_measurements(report)


def test_int8_backend_with_a_calibration_folder_that_does_not_exist_is_a_clear_error(tmp_path):
    result = run_cli("benchmark", "myresnet18", "--backends", "onnxruntime-int8",
                     "--calib-data", str(tmp_path / "missing"), *TINY)
    assert result.returncode == 1
    assert "--calib-data" in result.stderr and "missing" in result.stderr and "Traceback" not in result.stderr
