"""`resnet-hub benchmark` with the OpenVINO backends, the accuracy gate behind its recommendation, the CPU facts it
prints and its progress on stderr (speed itself is never asserted)."""

from __future__ import annotations

import json

import pytest
from test_benchmark_cli import TINY, check_numbers_come_from_measurements
from helpers.cli import run_cli

pytest.importorskip("openvino")


def test_openvino_backends_are_gated_on_labelled_images_and_the_fastest_passing_one_is_recommended(digits_model):
    result = run_cli("benchmark", "myresnet18", "--weights", str(digits_model), "--backends",
                     "onnxruntime-int8,openvino,openvino-int8", "--calib-limit", "64", "--eval-data", "digits",
                     "--eval-limit", "120", *TINY, timeout=1200)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    results = {r["backend"]: r for r in report["results"]}
    assert list(results) == ["timm", "onnxruntime-int8", "openvino", "openvino-int8"]
    assert all(r["available"] for r in results.values()), [r["reason"] for r in results.values()]
    assert "fp32 arithmetic" in results["openvino"]["description"]  # the f32 hint held: not bf16
    assert results["openvino-int8"]["arithmetic"] == "int8" and results["openvino"]["arithmetic"] == "fp32"
    assert "NNCF int8" in results["openvino-int8"]["description"]
    # The gate is the export's: top-1 on the labelled images vs PyTorch eager, allowed drop per precision.
    for name in ("onnxruntime-int8", "openvino", "openvino-int8"):
        r = results[name]
        assert r["accuracy_delta"] is not None and "on 120 images" in r["gate"]
        allowed = 1.0 if name.endswith("int8") else 0.1
        assert r["gate_passed"] == (-r["accuracy_delta"] <= allowed + 1e-9)
    passed = [r for r in results.values() if r["gate_passed"] or r["is_baseline"]]
    fastest = max(passed, key=lambda r: r["throughput"])
    assert report["recommended"] == fastest["backend"]
    assert report["recommendation"].startswith(f"recommendation: {fastest['backend']} ")
    from resnet_hub.cpu import isa_summary

    assert report["environment"]["isa"] == isa_summary()
    check_numbers_come_from_measurements(report)
    # Progress reached stderr although it was piped (one line per step).
    for step in ("setting up openvino-int8", "measuring the GEMM ceilings", "gating openvino"):
        assert step in result.stderr


def test_table_output_names_the_cpu_isa_and_ends_with_the_recommendation():
    args = [a for a in TINY if a != "--json"]
    result = run_cli("benchmark", "myresnet18", "--backends", "openvino", *args)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert any(line.startswith("CPU: ") and "ISA: " in line for line in lines)
    assert lines[-1].startswith("recommendation: ")
    assert "parity with PyTorch eager" in lines[-1] or "eager reference" in lines[-1]


def test_missing_openvino_makes_the_backend_unavailable_and_names_the_extra():
    result = run_cli("benchmark", "myresnet18", "--backends", "torch,openvino", *TINY,
                     blocked=("openvino",))
    assert result.returncode == 0, result.stderr
    results = {r["backend"]: r for r in json.loads(result.stdout)["results"]}
    assert not results["openvino"]["available"]
    assert "resnet-hub[openvino]" in results["openvino"]["reason"]
    assert json.loads(result.stdout)["recommended"] in ("timm", "torch")
