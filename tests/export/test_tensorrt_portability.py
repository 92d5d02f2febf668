"""Engine records, portability rules and the engine cache: the pure decisions, run without TensorRT or a GPU.

The TensorRT calls around them are covered against NVIDIA's real bindings in tests/tensorrt_conformance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
from export_helpers import minimal_manifest, tree
from helpers.cli import run_cli

from resnet_hub.errors import MissingDependencyError
from resnet_hub.export.digest import sha256_of_files
from resnet_hub.export.engine_cache import EngineCache
from resnet_hub.export.engine_record import (
    EngineMismatchError,
    EngineRecord,
    EngineRecordError,
    Environment,
    cache_key,
    check_record,
    differences,
    read_record,
    record_path,
)
from resnet_hub.export.errors import DeviceUnavailableError, ExportOptionError
from resnet_hub.export.tensorrt_plan import BatchProfile, plan_build

ENGINE = b"serialized plan bytes" * 10
H100 = Environment("10.16.1.11", (9, 0), "NVIDIA H100", "12.8")


def record(**changes) -> EngineRecord:
    flags = dict(version_compatible=False, hardware_compatibility="same", builder_flags=[], network_flags=[])
    flags.update(changes.pop("flags", {}))
    values = dict(tensorrt_version="10.16.1.11", compute_capability=(9, 0), gpu_name="NVIDIA H100",
                  cuda_runtime="12.8", onnx_sha256="ab" * 32, precision="fp16", profile=(1, 8, 32), flags=flags,
                  engine_sha256=hashlib.sha256(ENGINE).hexdigest(), engine_bytes=len(ENGINE))
    values.update(changes)
    return EngineRecord(**values)


def test_an_engine_runs_where_it_was_built():
    assert differences(record(), H100, ENGINE) == ()
    check_record(record(), H100, ENGINE)


@pytest.mark.parametrize("here,field,needle", [
    (Environment("10.16.1.11", (8, 6), "NVIDIA A10"), "compute capability",
     "built for 9.0 (NVIDIA H100), here 8.6 (NVIDIA A10)"),
    (Environment("11.4.0.106", (9, 0)), "TensorRT version", "built for 10.16.1.11, here 11.4.0.106"),
    (Environment("10.15.1.29", (9, 0)), "TensorRT version", "built for 10.16.1.11, here 10.15.1.29"),
])
def test_another_gpu_or_tensorrt_is_refused_with_what_differs(here, field, needle):
    with pytest.raises(EngineMismatchError) as info:
        check_record(record(), here, ENGINE, "out/model.plan")
    assert [d.field for d in info.value.differences] == [field]
    message = str(info.value)
    assert message.startswith("out/model.plan cannot run here") and needle in message
    assert "resnet-hub export MODEL --format tensorrt --precision fp16 --min-batch 1 --opt-batch 8 --max-batch 32" \
        in message


def test_version_compatible_engines_load_on_later_tensorrt_only():
    portable = record(flags=dict(version_compatible=True))
    assert differences(portable, Environment("10.16.1.11", (9, 0)), ENGINE) == ()
    assert differences(portable, Environment("11.4.0.106", (9, 0)), ENGINE) == ()
    (older,) = differences(portable, Environment("10.15.1.29", (9, 0)), ENGINE)
    assert older.field == "TensorRT version" and "never an older one" in older.why


def test_ampere_plus_engines_load_on_any_gpu_from_ampere_on():
    portable = record(flags=dict(hardware_compatibility="ampere+"))
    for capability in ((8, 0), (8, 6), (8, 9), (9, 0), (10, 0)):
        assert differences(portable, Environment("10.16.1.11", capability), ENGINE) == ()
    (turing,) = differences(portable, Environment("10.16.1.11", (7, 5)), ENGINE)
    assert turing.describe() == ("compute capability: built for ampere+ (>= 8.0), here 7.5 "
                                 "(hardware-compatible engines need an Ampere or newer GPU)")


def test_truncated_or_swapped_engine_is_refused_and_every_difference_listed():
    found = differences(record(), Environment("11.4.0.106", (8, 0)), ENGINE[:-1])
    assert [d.field for d in found] == ["engine file", "TensorRT version", "compute capability"]
    assert "truncated" in found[0].why


def test_record_round_trips_and_is_found_beside_the_engine_or_in_a_triton_manifest(tmp_path):
    plan = tmp_path / "out" / "model.plan"
    plan.parent.mkdir()
    plan.write_bytes(ENGINE)
    record_path(plan).write_text(record().to_json())
    assert record_path(plan).name == "model.plan.json"
    assert read_record(plan) == record()
    triton = tmp_path / "repo" / "m_tensorrt"
    (triton / "1").mkdir(parents=True)
    (triton / "1" / "model.plan").write_bytes(ENGINE)
    manifest = minimal_manifest("triton-tensorrt", {"1/model.plan": ENGINE},
                                tensorrt={"engine_record": record().to_dict()})
    (triton / "manifest.json").write_text(json.dumps(manifest))
    assert read_record(triton / "1" / "model.plan") == record()


@pytest.mark.parametrize("content,needle", [
    (None, "has no engine record"),
    ("{not json", "not readable JSON"),
    (json.dumps({"record_version": 1, "precision": "fp16"}), "incomplete or malformed"),
    (json.dumps({"record_version": 99}), "record version 99"),
])
def test_missing_or_broken_records_are_clear_errors(tmp_path, content, needle):
    plan = tmp_path / "model.plan"
    plan.write_bytes(ENGINE)
    if content is not None:
        record_path(plan).write_text(content)
    with pytest.raises(EngineRecordError, match=needle):
        read_record(plan)


KEY = dict(onnx_sha256="ab" * 32, precision="fp16", profile=(1, 8, 32),
           flags=dict(version_compatible=False, builder_flags=[]), tensorrt_version="10.16.1.11",
           compute_capability=(9, 0))


def test_cache_key_is_stable_and_changes_with_every_fact():
    assert cache_key(**KEY) == cache_key(**dict(KEY, flags=dict(builder_flags=[], version_compatible=False)))
    changed = [dict(KEY, onnx_sha256="cd" * 32), dict(KEY, precision="int8"), dict(KEY, profile=(1, 8, 64)),
               dict(KEY, flags=dict(version_compatible=True, builder_flags=[])), dict(KEY, tensorrt_version="11.4.0"),
               dict(KEY, compute_capability=(8, 9))]
    keys = {cache_key(**values) for values in changed} | {cache_key(**KEY)}
    assert len(keys) == len(changed) + 1


def test_engine_cache_stores_reuses_and_rejects_a_damaged_entry(tmp_path):
    cache = EngineCache(tmp_path / "engines")
    key = cache_key(**KEY)
    assert cache.lookup(key) is None
    entry = record(cache_key=key)
    cache.store(key, ENGINE, entry)
    assert cache.lookup(key) == (ENGINE, entry) and cache.keys() == [key]
    cache.path(key).write_bytes(ENGINE[:-3])  # truncated on disk: rebuilt, never served
    assert cache.lookup(key) is None
    other = cache_key(**dict(KEY, precision="int8"))
    with pytest.raises(ValueError):
        cache.store(other, ENGINE, entry)  # a record filed under another key would be served for the wrong build


def test_onnx_hash_covers_the_external_data_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"graph")
    (tmp_path / "model.onnx.data").write_bytes(b"weights")
    both = sha256_of_files([tmp_path / "model.onnx", tmp_path / "model.onnx.data"])
    (tmp_path / "model.onnx.data").write_bytes(b"weightz")
    assert sha256_of_files([tmp_path / "model.onnx", tmp_path / "model.onnx.data"]) != both


def test_plan_records_portability_flags():
    plan = plan_build("10.16.1.11", "fp16", profile=BatchProfile(1, 8, 32), version_compatible=True,
                      hardware_compatibility="ampere+", compute_capability=(9, 0))
    assert plan.builder_flags == ("VERSION_COMPATIBLE",) and plan.hardware_level == "AMPERE_PLUS"
    assert plan.runtime_allows_host_code
    assert plan.flags_record()["hardware_compatibility"] == "ampere+"
    default = plan_build("11.4.0", "fp16", profile=BatchProfile(1, 8, 32))
    assert default.hardware_level is None and not default.version_compatible
    assert dataclasses.replace(default).flags_record() != plan.flags_record()


def test_bad_hardware_compatibility_is_refused():
    with pytest.raises(ExportOptionError, match="Unknown hardware compatibility 'turing'; choose one of: same, ampere"):
        plan_build("11.4.0", "fp16", profile=BatchProfile(1, 1, 1), hardware_compatibility="turing")
    with pytest.raises(ExportOptionError, match="Ampere or newer GPU .* this one is 7.5"):
        plan_build("11.4.0", "fp16", profile=BatchProfile(1, 1, 1), hardware_compatibility="ampere+",
                   compute_capability=(7, 5))


def test_cli_refuses_an_unknown_hardware_compatibility_before_any_work(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("export", "myresnet18", "--format", "tensorrt", "--output", str(out), "--img-size", "64", "64",
                   "--hardware-compatibility", "turing", cwd=tmp_path)
    assert proc.returncode == 1 and "Unknown hardware compatibility 'turing'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and tree(tmp_path) == []


def test_missing_tensorrt_message_keeps_the_import_error():
    from resnet_hub.export.tensorrt_runtime import TensorRTImportError, _import_message

    missing = ModuleNotFoundError("No module named 'tensorrt'", name="tensorrt")
    assert "is not installed (ModuleNotFoundError: No module named 'tensorrt')" in _import_message(missing)
    broken = ImportError("libnvinfer.so.10: cannot open shared object file: No such file or directory")
    text = _import_message(broken)
    assert "installed but cannot be imported" in text and "libnvinfer.so.10: cannot open shared object" in text
    assert "not installed" not in text
    assert isinstance(TensorRTImportError(broken), MissingDependencyError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: there is no 'no GPU' message to check")
def test_no_cuda_message_says_it_once():
    from resnet_hub.export.tensorrt_runtime import require_cuda

    with pytest.raises(DeviceUnavailableError) as info:
        require_cuda()
    message = str(info.value)
    for phrase in ("NVIDIA GPU", "machine", "pip install 'resnet-hub[tensorrt]'", "CUDA build"):
        assert message.count(phrase) == 1, (phrase, message)
