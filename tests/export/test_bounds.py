"""Refusal messages never round a failing value into an apparent pass (issue #17 item 18)."""

from __future__ import annotations

import numpy as np

from resnet_hub.export.bounds import against, figure
from resnet_hub.export.verify import FP16, ParityCheck, VerificationReport


def test_a_value_just_below_its_bound_is_printed_below_it():
    assert against(0.7999, 0.8, ".0%", at_least=True) == "79.99% (>= 80%)"
    assert figure(1.004, 1.0, ".2f", at_least=False) == "1.004"  # "loses 1.004 points, more than the 1 allowed"
    assert against(0.81, 0.8, ".0%", at_least=True) == "81% (>= 80%)"  # passing values keep the short form


def test_no_failing_value_prints_equal_to_its_bound():
    for bound, fmt, at_least in ((0.8, ".0%", True), (0.99999, ".6f", True), (1e-4, ".2e", False), (1.0, ".2f", False)):
        for value in bound + np.linspace(-1e-7, 1e-7, 41) * max(bound, 1e-6) * 1e3:
            fails = value < bound if at_least else value > bound
            if fails:
                assert figure(float(value), bound, fmt, at_least=at_least) != format(bound, fmt)


def test_a_parity_report_just_under_its_top5_bound_does_not_read_as_a_pass():
    check = ParityCheck(batch_size=5, max_abs_diff=1e-3, mean_abs_diff=1e-4, reference_max_abs=10.0,
                        max_rel_diff=1e-4, min_cosine=1.0, top1_agreement=1.0, top5_overlap=0.7999, passed=False)
    text = VerificationReport("model.onnx", "ONNX Runtime", FP16, (check,)).describe()
    assert "top-5 overlap 79.99% (>= 80%)" in text
