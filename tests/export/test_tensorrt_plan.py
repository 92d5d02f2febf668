"""TensorRT decisions, tested for real without TensorRT: version branching, profiles, timing caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnet_hub.export.errors import ExportOptionError, ProfileShapeError
from resnet_hub.export.onnx import OnnxOptions
from resnet_hub.export.tensorrt import TensorRTOptions, plan_for
from resnet_hub.export.tensorrt_plan import (
    BatchProfile,
    default_timing_cache,
    parse_version,
    plan_build,
    resolve_profile,
)
from resnet_hub.export.verify import FP16, INT8, TRT_FP32

PROFILE = BatchProfile(1, 8, 32)


@pytest.mark.parametrize("text,expected", [("10.0.1.6", (10, 0, 1)), ("10.13.3.9", (10, 13, 3)),
                                           ("11.4.0.12", (11, 4, 0)), ("11", (11, 0, 0))])
def test_version_parsing(text, expected):
    v = parse_version(text)
    assert (v.major, v.minor, v.patch) == expected


@pytest.mark.parametrize("text", ["8.6.1", "9.3.0"])
def test_older_tensorrt_is_refused_with_upgrade_hint(text):
    with pytest.raises(ExportOptionError, match=r"TensorRT 10 or 11.*pip install 'resnet-hub\[tensorrt\]'"):
        parse_version(text)


@pytest.mark.parametrize("version,precision,onnx_variant,network_flags,builder_flags", [
    # TensorRT 10 before 10.12: weak typing with precision flags; INT8 from Q/DQ (no calibrator).
    ("10.3.0", "fp32", "fp32", (), ()),
    ("10.3.0", "fp16", "fp32", (), ("FP16",)),
    ("10.3.0", "int8", "int8-qdq", (), ("INT8", "FP16")),
    # 10.12+: the flags are deprecated, so strongly typed networks with precision from the graph.
    ("10.13.3.9", "fp16", "fp16", ("STRONGLY_TYPED",), ()),
    ("10.13.3.9", "int8", "int8-qdq", ("STRONGLY_TYPED",), ()),
    # 11: strongly typed only; precision flags do not exist any more.
    ("11.4.0", "fp32", "fp32", (), ()),
    ("11.4.0", "fp16", "fp16", (), ()),
    ("11.4.0", "int8", "int8-qdq", (), ()),
])
def test_plan_branches_on_tensorrt_generation(version, precision, onnx_variant, network_flags, builder_flags):
    plan = plan_build(version, precision, profile=PROFILE)
    assert plan.onnx_variant == onnx_variant
    assert plan.network_flags == network_flags
    assert plan.builder_flags == builder_flags
    assert plan.needs_quantization == (precision == "int8")
    assert plan.onnx_half == (onnx_variant == "fp16")
    assert plan.notes


def test_plan_never_uses_flags_removed_in_tensorrt_11():
    removed = {"FP16", "INT8", "BF16", "FP8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"}
    for precision in ("fp32", "fp16", "int8"):
        assert not removed & set(plan_build("11.0.0", precision, profile=PROFILE).builder_flags)


def test_plan_converts_units_and_validates_levels():
    plan = plan_build("11.4", "fp16", profile=PROFILE, workspace_mib=2048, optimization_level=5)
    assert plan.workspace_bytes == 2048 << 20
    with pytest.raises(ExportOptionError, match="0-5"):
        plan_build("11.4", "fp16", profile=PROFILE, optimization_level=6)
    with pytest.raises(ExportOptionError, match="workspace"):
        plan_build("11.4", "fp16", profile=PROFILE, workspace_mib=0)
    with pytest.raises(ExportOptionError, match="Unknown precision 'int4'"):
        plan_build("11.4", "int4", profile=PROFILE)


def test_profile_defaults_and_shapes():
    profile = resolve_profile(min_batch=None, opt_batch=None, max_batch=None, dynamic_batch=True, static_batch=1)
    assert profile == BatchProfile(1, 8, 32)
    assert profile.shapes((3, 224, 224)) == ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))
    assert resolve_profile(min_batch=2, opt_batch=None, max_batch=4, dynamic_batch=True, static_batch=1) == \
        BatchProfile(2, 4, 4)
    assert profile.verification_batches() == (1, 8, 32)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(min_batch=0, opt_batch=None, max_batch=None), "min-batch must be >= 1"),
    (dict(min_batch=4, opt_batch=2, max_batch=8), "min <= opt <= max"),
    (dict(min_batch=1, opt_batch=16, max_batch=8), "min <= opt <= max"),
])
def test_invalid_profiles_are_refused(kwargs, needle):
    with pytest.raises(ProfileShapeError, match=needle):
        resolve_profile(dynamic_batch=True, static_batch=1, **kwargs)


def test_static_graph_only_takes_its_own_batch():
    assert resolve_profile(min_batch=None, opt_batch=None, max_batch=None, dynamic_batch=False,
                           static_batch=4) == BatchProfile(4, 4, 4)
    with pytest.raises(ProfileShapeError, match="--max-batch 8 does not fit a static-batch ONNX graph of batch 4"):
        resolve_profile(min_batch=None, opt_batch=None, max_batch=8, dynamic_batch=False, static_batch=4)


def test_batch_outside_profile_is_refused_with_rebuild_hint():
    PROFILE.check(1)
    PROFILE.check(32)
    with pytest.raises(ProfileShapeError, match=r"Batch size 64 is outside .* \[1, 32\]; rebuild"):
        PROFILE.check(64)
    assert not PROFILE.covers(0)


def test_timing_cache_is_per_tensorrt_version_and_gpu(tmp_path):
    a = default_timing_cache(tmp_path, "10.13.3.9", "NVIDIA H100 80GB HBM3", (9, 0))
    b = default_timing_cache(tmp_path, "11.4.0", "NVIDIA H100 80GB HBM3", (9, 0))
    c = default_timing_cache(tmp_path, "10.13.3.9", "NVIDIA A100-SXM4-40GB", (8, 0))
    assert len({a, b, c}) == 3
    assert a.parent == tmp_path and a.name == "timing-trt10.13.3.9-nvidia-h100-80gb-hbm3-sm90.cache"


def test_plan_for_options_uses_explicit_cache_or_none(tmp_path):
    onnx = OnnxOptions()
    explicit = plan_for(TensorRTOptions(timing_cache=tmp_path / "t.cache"), onnx, "11.4.0")
    assert explicit.timing_cache == tmp_path / "t.cache"
    assert plan_for(TensorRTOptions(use_timing_cache=False), onnx, "11.4.0").timing_cache is None
    default = plan_for(TensorRTOptions(), onnx, "11.4.0", "NVIDIA L4", (8, 9))
    assert default.timing_cache.name.endswith("nvidia-l4-sm89.cache")


def test_tolerance_per_engine_precision():
    from resnet_hub.export.tensorrt_plan import parity_tolerance

    assert parity_tolerance("fp32") is TRT_FP32 and parity_tolerance("fp16") is FP16
    assert parity_tolerance("int8") is INT8


def test_no_path_in_the_plan_module_needs_tensorrt():
    import resnet_hub.export.tensorrt_plan as plan_module

    assert "import tensorrt" not in Path(plan_module.__file__).read_text()
