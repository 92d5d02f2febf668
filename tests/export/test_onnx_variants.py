"""Every registered variant exports to ONNX and reproduces PyTorch in ONNX Runtime.

Uses the TorchScript exporter (the fast path: ~4x quicker than dynamo, BatchNorm folded by constant
folding in eval mode); the dynamo exporter is covered on representative variants in test_onnx_exporters.
"""

from __future__ import annotations

import pytest

import resnet_hub
from resnet_hub.export.onnx import OnnxOptions, export_onnx
from resnet_hub.export.verify import FP32

from export_helpers import IMG


@pytest.mark.parametrize("name", resnet_hub.variant_names())
def test_variant_exports_and_matches_pytorch_at_untraced_batch_sizes(name, source_for, tmp_path):
    source = source_for(name)
    result = export_onnx(source, tmp_path / "out", OnnxOptions(exporter="torchscript", img_size=IMG, batch_size=2))

    report = result.verifications[0]
    assert report.passed, report.describe()
    # Traced at batch 2; checked at 1 and 3, so the dynamic axis really is dynamic.
    assert report.batch_sizes == (1, 3)
    for check in report.checks:
        assert check.max_rel_diff <= FP32.max_rel_diff and check.min_cosine >= FP32.min_cosine
        assert check.top1_agreement == 1.0
        assert 1.0 <= check.reference_max_abs <= 50.0, "logits must be O(1-10) for the tolerance to mean something"
    signature = result.manifest
    assert signature["inputs"] == [dict(name="input", dtype="float32", shape=["batch", 3, *IMG])]
    assert signature["outputs"] == [dict(name="logits", dtype="float32", shape=["batch", 1000])]
    assert "BatchNormalization" not in signature["graph_op_counts"] or name.startswith("myresnetv2")
