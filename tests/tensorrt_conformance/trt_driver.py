"""Runs inside a subprocess that imports ONE version of NVIDIA's real TensorRT bindings (its directory on
PYTHONPATH, the C stand-in on LD_LIBRARY_PATH): drives the project's TensorRT code end to end with only
``Builder``, ``OnnxParser`` and ``Runtime`` replaced by strict autospecs, and writes what it called as JSON.

    python trt_driver.py REPORT.json WORKDIR [--only fp32,fp16,...] [--no-benchmark] [--mutations FILE.json]

Any mismatch with the real API (a misspelt method, property, enum member or a wrong argument) raises and the
process exits non-zero with the traceback on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CHW = (3, 32, 32)
PIXELS = (32, 32, 3)  # --embed-preprocessing: the engine takes uint8 NHWC pixels
PROFILE = (1, 4, 8)
HERE_CC = (9, 0)


def scenarios(version: str) -> dict[str, dict]:
    """Build plans to run: each precision as this TensorRT would plan it, a portable engine, an int8 engine of a
    graph with embedded preprocessing (uint8 (N, H, W, 3) input), and on 10.x the weakly typed plans of
    TensorRT < 10.12 (whose BuilderFlag.FP16/INT8 still exist, deprecated, in 10.x)."""
    found = {p: dict(version=version, precision=p) for p in ("fp32", "fp16", "int8")}
    found["portable"] = dict(version=version, precision="fp16", version_compatible=True,
                             hardware_compatibility="ampere+")
    found["pixels"] = dict(version=version, precision="int8", sample_shape=PIXELS, input_dtype="UINT8")
    if version.startswith("10."):
        found["weak-fp16"] = dict(version="10.11.0", precision="fp16")
        found["weak-int8"] = dict(version="10.11.0", precision="int8", version_compatible=True)
    return found


def run_plan(trt, strict, rt, label: str, spec: dict, work: Path) -> dict:
    from resnet_hub.export.engine_record import Environment
    from resnet_hub.export.tensorrt_plan import BatchProfile, plan_build

    sample = tuple(spec.get("sample_shape", CHW))
    fakes = strict.install(trt, chw=sample, profile=PROFILE,
                           input_dtype=getattr(trt.DataType, spec.get("input_dtype", "FLOAT")))
    here = Environment(tensorrt_version=trt.__version__, compute_capability=HERE_CC, gpu_name="stand-in GPU")
    plan = plan_build(spec["version"], spec["precision"], profile=BatchProfile(*PROFILE), workspace_mib=256,
                      optimization_level=4, timing_cache=work / f"{label}.timing",
                      version_compatible=spec.get("version_compatible", False),
                      hardware_compatibility=spec.get("hardware_compatibility", "same"), compute_capability=HERE_CC)
    graph = work / f"{label}.onnx"
    graph.write_bytes(f"graph for {label}".encode())
    engine, record, reused = rt.engine_for_plan([graph], plan, sample, here, None)
    config = fakes.config
    level = vars(config).get("hardware_compatibility_level")
    result = dict(
        plan=dict(network_flags=list(plan.network_flags), builder_flags=list(plan.builder_flags),
                  onnx_variant=plan.onnx_variant),
        create_network_flags=fakes.builder.create_network.call_args.args[0],
        set_flags=[c.args[0].name for c in config.set_flag.call_args_list],
        hardware_level=level.name if level is not None else None,
        optimization_level=vars(config).get("builder_optimization_level"),
        memory_pool=[(c.args[0].name, c.args[1]) for c in config.set_memory_pool_limit.call_args_list],
        profile_shapes=[[list(d) for d in c.args[1:]] for c in fakes.profile.set_shape.call_args_list],
        parsed=fakes.parser.parse_from_file.call_args.args[0],
        timing_cache_written=(work / f"{label}.timing").read_bytes().decode(),
        reused=reused,
    )
    # Load it as TensorRTModule does: engine + sidecar record from disk, record checked, then the binding calls.
    directory = work / label
    directory.mkdir()
    (directory / "model.plan").write_bytes(engine)
    (directory / "model.plan.json").write_text(record.to_json())
    session, loaded_record = rt.load_session(trt, directory / "model.plan", here)
    out_shape = session.output_shape((2, *sample))
    session.execute(0x1000, 0x2000, 0)
    result.update(
        deserialized=fakes.runtime.deserialize_cuda_engine.call_args.args[0] == engine,
        refused=refusals(trt, rt, fakes, directory, record, here),
        host_code_allowed=vars(fakes.runtime).get("engine_host_code_allowed"),
        input_shape_set=list(fakes.context.set_input_shape.call_args.args[1]),
        output_shape=list(out_shape),
        addresses=[c.args for c in fakes.context.set_tensor_address.call_args_list],
        executed=[c.args for c in fakes.context.execute_async_v3.call_args_list],
        profile=[session.profile.min, session.profile.opt, session.profile.max],
        sample_shape=list(session.sample_shape),
        torch_dtypes=[str(rt._torch_dtype(trt, session.input_dtype)), str(rt._torch_dtype(trt, session.output_dtype))],
        record=dict(precision=loaded_record.precision, flags=loaded_record.flags),
    )
    return result


def refusals(trt, rt, fakes, directory: Path, record, here) -> dict:
    """Engines that must not load here are refused before ``deserialize_cuda_engine`` is called."""
    from resnet_hub.export.engine_record import EngineMismatchError, EngineRecordError, Environment

    calls_before = fakes.runtime.deserialize_cuda_engine.call_count
    older = Environment(tensorrt_version="9.0.0", compute_capability=here.compute_capability)
    turing = Environment(tensorrt_version=here.tensorrt_version, compute_capability=(7, 5))
    truncated = directory / "truncated" / "model.plan"
    truncated.parent.mkdir()
    truncated.write_bytes((directory / "model.plan").read_bytes()[:-5])
    (directory / "truncated" / "model.plan.json").write_text(record.to_json())
    bare = directory / "bare" / "model.plan"
    bare.parent.mkdir()
    bare.write_bytes((directory / "model.plan").read_bytes())
    found = {}
    for label, path, env in (("older TensorRT", directory / "model.plan", older),
                             ("Turing GPU", directory / "model.plan", turing),
                             ("truncated", truncated, here), ("no record", bare, here)):
        try:
            rt.load_session(trt, path, env)
            found[label] = "loaded"
        except (EngineMismatchError, EngineRecordError) as exc:
            found[label] = f"{type(exc).__name__}: {exc}"
    found["deserialize_calls"] = fakes.runtime.deserialize_cuda_engine.call_count - calls_before
    return found


def run_cache(trt, strict, rt, work: Path) -> dict:
    """Same key reuses, any difference (precision, flags, TensorRT version, compute capability) rebuilds."""
    from resnet_hub.export.engine_cache import EngineCache
    from resnet_hub.export.engine_record import Environment
    from resnet_hub.export.tensorrt_plan import BatchProfile, plan_build

    fakes = strict.install(trt, chw=CHW, profile=PROFILE)
    cache = EngineCache(work / "engine-cache")
    graph = work / "cached.onnx"
    graph.write_bytes(b"graph")
    here = Environment(tensorrt_version=trt.__version__, compute_capability=HERE_CC, gpu_name="stand-in GPU")

    def plan(precision="fp16", **kw):
        return plan_build(trt.__version__, precision, profile=BatchProfile(*PROFILE), **kw)

    steps = []
    for label, p, env in [
        ("first", plan(), here),
        ("same key", plan(), here),
        ("other precision", plan("fp32"), here),
        ("version-compatible", plan(version_compatible=True), here),
        ("other compute capability", plan(), Environment(trt.__version__, (8, 6), "other GPU")),
        ("other TensorRT", plan(), Environment(trt.__version__ + ".1", HERE_CC, "stand-in GPU")),
        ("same key again", plan(), here),
    ]:
        engine, record, reused = rt.engine_for_plan([graph], p, CHW, env, cache)
        steps.append(dict(step=label, reused=reused, builds=len(fakes.built), key=record.cache_key))
    return dict(steps=steps, entries=len(cache.keys()))


def run_benchmark(trt, strict, rt, work: Path) -> dict:
    """resnet_hub.tasks.benchmark._tensorrt_runner's TensorRT part: ONNX export on the CPU, fp32 engine with the
    batch-exact profile, loaded the way TensorRTModule loads it."""
    import torch

    from resnet_hub.export.engine_record import Environment

    fakes = strict.install(trt, chw=CHW, profile=(2, 2, 2))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 10)).eval()
    here = Environment(tensorrt_version=trt.__version__, compute_capability=HERE_CC, gpu_name="stand-in GPU")
    engine, plan = rt.benchmark_engine(model, (2, *CHW), work / "benchmark", here)
    session = rt.EngineSession(trt, engine)
    session.output_shape((2, *CHW))
    session.execute(0x1000, 0x2000, 0)
    return dict(precision=plan.precision, profile=[plan.profile.min, plan.profile.opt, plan.profile.max],
                parsed=Path(fakes.parser.parse_from_file.call_args.args[0]).name,
                profile_shapes=[[list(d) for d in c.args[1:]] for c in fakes.profile.set_shape.call_args_list],
                executed=len(fakes.context.execute_async_v3.call_args_list))


def _load(path: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_mutations(trt, strict, mutations: list[dict], work: Path) -> dict:
    """Each mistake typed into a copy of export/tensorrt_plan.py + tensorrt_runtime.py + tensorrt.py, loaded in place
    of the originals (same process: one torch import for all), then its scenario run; what it raised, and where."""
    import traceback

    import resnet_hub.export.tensorrt as original_rt
    import resnet_hub.export.tensorrt_plan as original_plan
    import resnet_hub.export.tensorrt_runtime as original_run

    originals = (original_plan, original_run, original_rt)  # in import order: each stands on the ones before
    names = tuple(module.__name__ for module in originals)
    results = {}
    for mutation in mutations:
        copy = work / "mutations" / mutation["name"]
        copy.mkdir(parents=True)
        for module in originals:
            text = Path(module.__file__).read_text()
            if Path(module.__file__).name == mutation["file"]:
                if text.count(mutation["original"]) != 1:
                    raise AssertionError(f"{mutation['original']!r} not found once in {mutation['file']}")
                text = text.replace(mutation["original"], mutation["mistake"])
            (copy / Path(module.__file__).name).write_text(text)
        try:
            for module, name in zip(originals, names):
                loaded = _load(copy / Path(module.__file__).name, name)
            rt = loaded
            spec = scenarios(trt.__version__)[mutation["scenario"]]
            scenario_work = copy / "run"
            scenario_work.mkdir()
            run_plan(trt, strict, rt, mutation["scenario"], spec, scenario_work)
            results[mutation["name"]] = dict(error=None)
        except Exception as exc:  # the point: the mistake must surface as an exception
            frames = traceback.extract_tb(exc.__traceback__)
            results[mutation["name"]] = dict(error=f"{type(exc).__name__}: {exc}",
                                             files=[frame.filename for frame in frames])
        finally:
            for module, name in zip(originals, names):
                sys.modules[name] = module
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("workdir")
    parser.add_argument("--only", default="")
    parser.add_argument("--no-benchmark", action="store_true")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--mutations", default=None, help="JSON list of mistakes to type into copies of the code")
    args = parser.parse_args(argv)

    import tensorrt as trt  # the real bindings of this subprocess's version
    import trt_strict as strict

    from resnet_hub.export import tensorrt as rt

    assert rt.import_tensorrt() is trt
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in args.only.split(",") if s]
    report: dict = dict(tensorrt=trt.__version__, module=trt.__file__, plans={})
    for label, spec in scenarios(trt.__version__).items():
        if not wanted or label in wanted:
            report["plans"][label] = run_plan(trt, strict, rt, label, spec, work)
    if not args.no_cache:
        report["cache"] = run_cache(trt, strict, rt, work)
    if not args.no_benchmark:
        report["benchmark"] = run_benchmark(trt, strict, rt, work)
    if args.mutations:
        report["mutations"] = run_mutations(trt, strict, json.loads(Path(args.mutations).read_text()), work)
    Path(args.report).write_text(json.dumps(report, indent=2, default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
