"""The project's TensorRT code against NVIDIA's real Python bindings of the newest TensorRT 10.x and 11.x.

No GPU is needed: the real ``tensorrt`` module is imported (its C dependencies replaced by a NULL-returning
stand-in built here with the system compiler) and only ``Builder``, ``OnnxParser`` and ``Runtime`` are strict
autospecs of the real classes (trt_strict.py). Each version runs in its own subprocess (two ``tensorrt``
versions cannot share one) via trt_driver.py, which builds fp32 / fp16 / int8 / portable plans through
``build_engine``, loads each as ``TensorRTModule`` does (record check + ``EngineSession``), exercises the engine
cache and the benchmark's engine path. The mutation tests prove the check bites: a misspelt method, property or
flag, or a wrong argument type, typed into a copy of the code (loaded in place of the original) makes it fail.

What this cannot show: that TensorRT builds a correct engine or that CUDA execution works; the GPU tests
(tests/export/test_tensorrt_gpu.py) cover that where a GPU exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trt_bindings import VERSIONS, BindingsUnavailable, build_stub, compiler, ensure_bindings, major

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "trt_driver.py"
TIMEOUT = 300


@pytest.fixture(scope="session")
def stub_libs(tmp_path_factory) -> Path:
    if compiler() is None:
        pytest.skip("no C compiler (gcc/cc or $CC) to build the libnvinfer stand-in the real bindings need")
    return build_stub(tmp_path_factory.mktemp("nvinfer-stub"))


def _bindings(version: str) -> Path:
    try:
        return ensure_bindings(version)
    except BindingsUnavailable as exc:  # CI prefetches (tests/tensorrt_conformance/trt_bindings.py): never here
        pytest.skip(f"TensorRT {version} bindings unavailable: {exc}")


def _driver(version: str, stub: Path, work: Path, *args: str) -> subprocess.Popen:
    """Start the driver for ``version``: its bindings and the C stand-in, nothing else, on the paths."""
    paths = [str(_bindings(version)), str(HERE)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONDONTWRITEBYTECODE="1",
               LD_LIBRARY_PATH=os.pathsep.join(p for p in (str(stub), os.environ.get("LD_LIBRARY_PATH")) if p))
    work.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, str(DRIVER), str(work / "report.json"), str(work / "run"), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="session", params=VERSIONS, ids=[f"trt{v}" for v in VERSIONS])
def report(request, stub_libs, tmp_path_factory) -> dict:
    """The driver's account of one bindings version (all scenarios), run once per session."""
    version = request.param
    work = tmp_path_factory.mktemp(f"conformance-{version}")
    mutations = work / "mutations.json"
    mutations.write_text(json.dumps([dict(name=n, file=f, original=o, mistake=m, scenario=sc)
                                     for n, (f, o, m, sc, _needle) in mutations_for(version).items()]))
    proc = _driver(version, stub_libs, work, "--mutations", str(mutations))
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, f"TensorRT {version} conformance failed:\n{err[-4000:]}"
    return json.loads((work / "report.json").read_text())


def test_the_real_bindings_of_each_version_are_imported(report):
    assert report["tensorrt"] in VERSIONS
    assert Path(report["module"]).parts[-3] == report["tensorrt"]  # <cache>/<version>/tensorrt/__init__.py


def test_each_precision_builds_with_the_flags_its_generation_has(report):
    version = report["tensorrt"]
    plans = report["plans"]
    assert {"fp32", "fp16", "int8", "portable"} <= set(plans)
    for precision in ("fp32", "fp16", "int8"):
        built = plans[precision]
        # 10.12+: STRONGLY_TYPED is flag bit 1 (value 2); 11: strongly typed only, no flag bits at all.
        assert built["create_network_flags"] == (2 if major(version) == 10 else 0)
        assert built["set_flags"] == []
        assert built["memory_pool"] == [["WORKSPACE", 256 << 20]]
        assert built["optimization_level"] == 4
        assert built["profile_shapes"] == [[[1, 3, 32, 32], [4, 3, 32, 32], [8, 3, 32, 32]]]
        assert built["timing_cache_written"] == "timing-cache"
        assert built["record"]["precision"] == precision
    assert plans["fp16"]["plan"]["onnx_variant"] == "fp16" and plans["int8"]["plan"]["onnx_variant"] == "int8-qdq"
    if major(version) == 10:  # the weakly typed plans of TensorRT < 10.12 still name real (deprecated) flags
        assert plans["weak-fp16"]["set_flags"] == ["FP16"] and plans["weak-fp16"]["create_network_flags"] == 0
        assert plans["weak-int8"]["set_flags"] == ["INT8", "FP16", "VERSION_COMPATIBLE"]


def test_portable_engines_set_version_and_hardware_compatibility(report):
    portable = report["plans"]["portable"]
    assert "VERSION_COMPATIBLE" in portable["set_flags"]
    assert portable["hardware_level"] == "AMPERE_PLUS"
    assert portable["host_code_allowed"] is True  # the runtime must allow the embedded lean runtime
    assert portable["record"]["flags"]["version_compatible"] is True
    assert portable["record"]["flags"]["hardware_compatibility"] == "ampere+"
    assert report["plans"]["fp32"]["host_code_allowed"] is None  # never enabled for ordinary plans


def test_every_plan_loads_and_runs_through_the_binding_calls(report):
    for label, built in report["plans"].items():
        sample = [32, 32, 3] if label == "pixels" else [3, 32, 32]
        assert built["deserialized"], label
        assert built["input_shape_set"] == [2, *sample]
        assert built["addresses"] == [["input", 0x1000], ["logits", 0x2000]]
        assert built["executed"] == [[0]]
        assert built["profile"] == [1, 4, 8] and built["sample_shape"] == sample
        assert built["torch_dtypes"] == [("torch.uint8" if label == "pixels" else "torch.float32"), "torch.float32"]


def test_an_engine_with_embedded_preprocessing_has_a_pixel_profile_and_uint8_input(report):
    """--embed-preprocessing: the profile varies the batch of (H, W, 3) pixels, and TensorRTModule maps the
    engine's UINT8 input to torch.uint8 (the dtype its input check then demands)."""
    pixels = report["plans"]["pixels"]
    assert pixels["profile_shapes"] == [[[1, 32, 32, 3], [4, 32, 32, 3], [8, 32, 32, 3]]]
    assert pixels["plan"]["onnx_variant"] == "int8-qdq" and pixels["record"]["precision"] == "int8"
    assert pixels["torch_dtypes"][0] == "torch.uint8"


def test_engines_for_elsewhere_are_refused_before_deserialising(report):
    for label, built in report["plans"].items():
        refused = built["refused"]
        assert refused["deserialize_calls"] == 0, label
        assert refused["truncated"].startswith("EngineMismatchError") and "truncated" in refused["truncated"]
        assert refused["no record"].startswith("EngineRecordError") and "check_record=False" in refused["no record"]
        assert refused["older TensorRT"].startswith("EngineMismatchError")
        assert "TensorRT version: built for " + report["tensorrt"] + ", here 9.0.0" in refused["older TensorRT"]
        assert "resnet-hub export MODEL --format tensorrt" in refused["older TensorRT"]
        if built["record"]["flags"]["hardware_compatibility"] == "ampere+":
            assert "ampere+ (>= 8.0), here 7.5" in refused["Turing GPU"]
        else:
            assert "compute capability: built for 9.0 (stand-in GPU), here 7.5" in refused["Turing GPU"]


def test_engine_cache_reuses_only_an_equal_key(report):
    steps = {s["step"]: s for s in report["cache"]["steps"]}
    assert not steps["first"]["reused"] and steps["first"]["builds"] == 1
    assert steps["same key"]["reused"] and steps["same key"]["builds"] == 1
    assert steps["same key"]["key"] == steps["first"]["key"]
    for label, builds in (("other precision", 2), ("version-compatible", 3), ("other compute capability", 4),
                          ("other TensorRT", 5)):
        assert not steps[label]["reused"] and steps[label]["builds"] == builds, label
    assert steps["same key again"]["reused"] and steps["same key again"]["builds"] == 5
    assert report["cache"]["entries"] == 5


def test_benchmark_engine_is_fp32_with_a_batch_exact_profile(report):
    bench = report["benchmark"]
    assert bench["precision"] == "fp32" and bench["profile"] == [2, 2, 2]
    assert bench["parsed"] == "tensorrt.onnx"  # a real ONNX export fed the parser
    assert bench["profile_shapes"] == [[[2, 3, 32, 32]] * 3]
    assert bench["executed"] == 1


# --- the check bites: mistakes typed into a copy of the code --------------------------------------------------

MUTATIONS = {
    # id: (file under export/, original, mistake, driver scenario, expected in the error)
    "method": ("tensorrt.py", "config.set_memory_pool_limit(", "config.set_memory_pool_limt(", "fp32",
               "set_memory_pool_limt"),
    "property": ("tensorrt.py", "config.builder_optimization_level =", "config.builder_optimisation_level =", "fp32",
                 "builder_optimisation_level"),
    "removed-api": ("tensorrt_runtime.py", "execute_async_v3(int(stream_handle))",
                    "execute_async_v2(int(stream_handle))", "fp32", "execute_async_v2"),
    "builder-flag": ("tensorrt_plan.py", '(*builder_flags, "VERSION_COMPATIBLE")',
                     '(*builder_flags, "VERSION_COMPATABLE")', "portable", "no BuilderFlag.VERSION_COMPATABLE"),
    "argument-type": ("tensorrt.py", 'config.set_flag(_member(trt, "BuilderFlag", name))', "config.set_flag(name)",
                      "portable", "set_flag(): incompatible function arguments"),
    "property-type": ("tensorrt_runtime.py", "self.runtime.engine_host_code_allowed = True",
                      "self.runtime.engine_host_code_allowed = 1", "portable", "engine_host_code_allowed"),
    "pixel-dtype": ("tensorrt_runtime.py", "trt.DataType.UINT8: torch.uint8", "trt.DataType.UNIT8: torch.uint8",
                    "pixels", "UNIT8"),
}
# Only TensorRT 10.12+ uses STRONGLY_TYPED (11 plans no network flags at all).
MUTATIONS_10 = {"network-flag": ("tensorrt_plan.py", '("STRONGLY_TYPED",), ()', '("STRONGLY_TYPE",), ()', "fp16",
                                 "no NetworkDefinitionCreationFlag.STRONGLY_TYPE")}


def mutations_for(version: str) -> dict[str, tuple]:
    return {**MUTATIONS, **(MUTATIONS_10 if major(version) == 10 else {})}


@pytest.mark.parametrize("name", list(MUTATIONS) + list(MUTATIONS_10))
def test_a_mistake_in_the_tensorrt_code_fails_the_conformance_run(name, report):
    """Each mistake is typed into a copy of the code; the copy, loaded in place of the original, must fail."""
    wanted = mutations_for(report["tensorrt"])
    if name not in wanted:
        pytest.skip(f"TensorRT {report['tensorrt']} plans never use the code this mistake is in")
    needle = wanted[name][-1]
    result = report["mutations"][name]
    assert result["error"] is not None, f"the {name} mistake went unnoticed on TensorRT {report['tensorrt']}"
    assert needle in result["error"], result["error"]
    assert any(f"/mutations/{name}/" in f for f in result["files"]), result["files"]  # raised in the mutated copy


def test_bindings_without_their_libraries_keep_the_real_import_error():
    """The common broken install: the bindings are there, libnvinfer is not. The real ``import tensorrt``
    failure (a bare subprocess, no stand-in) must come through in our message, not a claim of 'not installed'."""
    from resnet_hub.export.tensorrt_runtime import TensorRTImportError

    version = VERSIONS[-1]
    env = dict(os.environ, PYTHONPATH=str(_bindings(version)))
    env.pop("LD_LIBRARY_PATH", None)
    proc = subprocess.run([sys.executable, "-c", "import tensorrt"], env=env, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode == 0:
        pytest.skip(f"TensorRT {major(version)} libraries are installed on this machine")
    kind, _, text = proc.stderr.strip().splitlines()[-1].partition(": ")
    assert kind == "ImportError" and f".so.{major(version)}: cannot open shared object file" in text, proc.stderr
    message = str(TensorRTImportError(ImportError(text)))
    assert "installed but cannot be imported" in message and text in message  # the loader's own words survive
    assert "not installed" not in message
