"""`resnet-hub benchmark` run as the real console script with tiny settings (speed itself is never asserted)."""

from __future__ import annotations

import importlib.util
import json
import statistics

import pytest

from resnet_hub.zoo.stats import model_stats
from helpers.cli import run_cli

TINY = ("--img-size", "32", "--batch-size", "2", "--iters", "3", "--warmup", "1", "--threads", "1", "--json")
def _export_onnx_exists() -> bool:
    try:
        return importlib.util.find_spec("resnet_hub.export.onnx") is not None
    except ModuleNotFoundError:
        return False


def check_numbers_come_from_measurements(report: dict) -> None:
    """Every summary number must follow from the raw latencies, the FLOP count and the measured ceilings."""
    baseline = next(r for r in report["results"] if r["is_baseline"])
    assert baseline["backend"] == report["baseline"]
    for r in (r for r in report["results"] if r["available"]):
        latencies = r["latencies_ms"]
        assert len(latencies) == report["iters"] == 3
        assert r["median_ms"] == pytest.approx(statistics.median(latencies))
        assert r["min_ms"] == pytest.approx(min(latencies)) and r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert r["throughput"] == pytest.approx(report["batch_size"] * 1000 / r["median_ms"])
        assert r["speedup"] == pytest.approx(baseline["median_ms"] / r["median_ms"])
        assert r["achieved_gflops"] == pytest.approx(report["gflops_per_image"] * r["throughput"])
        ceiling = report["ceilings"].get(r["arithmetic"])
        if ceiling is not None:
            assert r["ceiling_fraction"] == pytest.approx(r["achieved_gflops"] / ceiling["gops"])
        assert r["setup_s"] > 0
    assert baseline["speedup"] == pytest.approx(1.0)


def test_benchmark_json_measures_every_backend_against_timm():
    result = run_cli("benchmark", "myresnet18", "--backends", "torch,torch-optimized,onnxruntime",
                     "--peak-gflops", "100", *TINY)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "myresnet18" and report["baseline"] == "timm"
    assert "resnet18" in report["baseline_note"] and "same weights" in report["baseline_note"]
    assert (report["batch_size"], report["img_size"], report["threads"]) == (2, 32, 1)
    assert report["gflops_per_image"] == pytest.approx(model_stats("myresnet18", 32).gflops)
    assert report["ceilings"]["fp32"]["gops"] == 100.0 and report["ceilings"]["fp32"]["source"] == "user"
    results = {r["backend"]: r for r in report["results"]}
    assert list(results) == ["timm", "torch", "torch-optimized", "onnxruntime"]
    assert all(results[b]["available"] for b in ("timm", "torch", "torch-optimized"))
    if _export_onnx_exists():
        assert results["onnxruntime"]["available"], results["onnxruntime"]["reason"]
        assert "ONNX Runtime" in results["onnxruntime"]["description"]
    else:  # the export module belongs to another issue; until it lands the backend must say why it is missing
        assert "resnet_hub.export.onnx" in results["onnxruntime"]["reason"]
    for r in results.values():
        if r["available"]:  # same weights everywhere, so every backend computes the same logits
            assert r["max_abs_diff"] < 1e-3, r
    check_numbers_come_from_measurements(report)


def test_benchmark_variant_without_timm_peer_uses_our_eager_model_as_baseline():
    result = run_cli("benchmark", "myresnet50_v1", "--backends", "torch-optimized", *TINY)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["baseline"] == "torch"
    assert "no peer" in report["baseline_note"]
    assert [r["backend"] for r in report["results"]] == ["torch", "torch-optimized"]
    check_numbers_come_from_measurements(report)


def test_benchmark_reports_missing_onnxruntime_and_tensorrt_and_measures_the_rest():
    result = run_cli("benchmark", "myresnet18", "--backends", "torch,onnxruntime,tensorrt", *TINY,
                     blocked=("onnxruntime",))
    assert result.returncode == 0, result.stderr
    results = {r["backend"]: r for r in json.loads(result.stdout)["results"]}
    assert results["torch"]["available"] and results["timm"]["available"]
    assert not results["onnxruntime"]["available"]
    assert "pip install 'resnet-hub[onnx]'" in results["onnxruntime"]["reason"]
    assert not results["tensorrt"]["available"]
    assert "GPU" in results["tensorrt"]["reason"] or "resnet-hub[tensorrt]" in results["tensorrt"]["reason"]
    assert "onnxruntime unavailable" in result.stderr and "resnet-hub[onnx]" in result.stderr


def test_benchmark_fails_when_only_unavailable_backends_were_asked_for():
    result = run_cli("benchmark", "myresnet18", "--backends", "onnxruntime", *TINY, blocked=("onnxruntime",))
    assert result.returncode == 1
    assert "none of the requested backends could run" in result.stderr
    assert "resnet-hub[onnx]" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("myresnet5",), "Unknown model 'myresnet5'"),
        (("myresnet18", "--backends", "torch,tvm"), "Unknown backend(s): tvm"),
        (("myresnet18", "--device", "cuda"), "CUDA"),
    ],
    ids=["unknown-model", "unknown-backend", "cuda-missing"],
)
def test_benchmark_bad_input_exits_non_zero_with_a_clear_message(args, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_cli("benchmark", *args, "--iters", "1", "--img-size", "32", "--batch-size", "1")
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
