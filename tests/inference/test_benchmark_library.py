"""The benchmark library's arithmetic and bookkeeping (speed itself is never asserted)."""

from __future__ import annotations

import statistics

import pytest
import torch

from resnet_hub.tasks.benchmark import (
    BenchmarkError,
    _percentile,
    measure_ceilings,
    parse_backends,
    run_benchmark,
)


def test_ceilings_are_measured_gemm_rates_per_arithmetic_or_the_user_value():
    ceilings = measure_ceilings(1, ["fp32", "int8", "fp32"])
    assert set(ceilings) == {"fp32", "int8"}
    assert ceilings["fp32"].source == ceilings["int8"].source == "measured"
    # The ceiling is the fastest candidate measured, and says which one that was.
    assert any(name.startswith("torch.mm") for name in ceilings["fp32"].candidates)
    assert any("MatMulInteger" in name for name in ceilings["int8"].candidates)
    for ceiling in ceilings.values():
        # candidates are reported rounded to 0.1 GOP/s: a slow (loaded) machine needs the absolute slack
        assert ceiling.gops == pytest.approx(max(ceiling.candidates.values()), rel=1e-3, abs=0.051)
        assert ceiling.method.startswith(max(ceiling.candidates, key=ceiling.candidates.__getitem__))
    user = measure_ceilings(1, ["fp32"], peak_gflops=123.0)
    assert user["fp32"].gops == 123.0 and user["fp32"].source == "user" and "int8" not in user


def test_percentile_interpolates_like_numpy():
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 10.0]
    assert _percentile(values, 50) == pytest.approx(statistics.median(values))
    assert _percentile(values, 90) == pytest.approx(7.5)  # numpy.percentile(values, 90)
    assert _percentile([2.0], 90) == 2.0


def test_parse_backends_rejects_unknown_names_and_keeps_order():
    assert parse_backends("onnxruntime, torch,torch") == ["onnxruntime", "torch"]
    with pytest.raises(BenchmarkError, match="tvm"):
        parse_backends("torch,tvm")
    with pytest.raises(BenchmarkError):
        parse_backends("")


def test_run_benchmark_in_process_reports_progress_and_restores_threads():
    messages: list[str] = []
    threads_before = torch.get_num_threads()
    report = run_benchmark("myresnet18", "torch-optimized,tensorrt", batch_size=1, img_size=32, warmup=0, iters=2,
                           threads=1, progress=messages.append)
    assert torch.get_num_threads() == threads_before
    assert [r.backend for r in report.results] == ["timm", "torch-optimized", "tensorrt"]
    assert not report.result("tensorrt").available and not report.all_requested_unavailable
    assert report.result("torch-optimized").max_abs_diff < 1e-4
    assert any(m.startswith("setting up") for m in messages) and "round 2/2" in messages
    assert report.to_dict()["results"][0]["is_baseline"] is True
