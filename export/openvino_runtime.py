"""Running an OpenVINO IR (``model.xml`` + ``model.bin``) on the CPU as a logits function.

The CPU plugin chooses its arithmetic unless told: on CPUs with ``avx512_bf16`` or AMX it computes in **bf16** by
default, even for a model converted "in fp32", and a request for ``f16`` becomes bf16 there too (the CPU has no
fp16 arithmetic; on AVX2-only CPUs both fall back to f32). So every compile here passes an explicit
``INFERENCE_PRECISION_HINT``, and callers read back the precision that really runs
(:func:`inference_precision`) to label their figures with it.

Threads and streams: ``PERFORMANCE_HINT: LATENCY`` gives one stream that runs a batch on all its threads (what a
benchmark of one client and the parity checks want); ``THROUGHPUT`` runs several requests in parallel streams.
``ENABLE_CPU_PINNING`` pins the plugin's threads to cores; on a machine shared with other processes a pinned
thread waits for its core instead of moving to a free one, which is the run-to-run spread the benchmark saw under
load, so the default here is unpinned (measured: ``benchmarks/openvino_vs_default.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# INFERENCE_PRECISION_HINT per export precision: fp32 must stay fp32 (the CPU plugin would run bf16 silently);
# int8 keeps its non-quantized ops (pooling, the classifier's bias, the residual adds' scales) in f32, which costs
# nothing measurable and keeps the int8 error the only one. fp16: see :func:`precision_hint`.
PRECISION_HINTS = {"fp32": "f32", "fp16": "f16", "int8": "f32"}


def precision_hint(precision: str) -> str:
    """The hint an export of ``precision`` is compiled with on this CPU.

    fp16 gets ``f16`` only on CPUs with fp16 arithmetic (AVX512-FP16 / AMX-FP16). Elsewhere the CPU plugin turns an
    f16 request into bf16 (avx512_bf16 / AMX CPUs), whose 8-bit mantissa is not fp16's 11: on the digits model bf16
    measured max |diff| / logit range 6.6e-3, outside fp16's 5e-3 tolerance. So there the fp16 model (fp16 weights,
    half the file) is computed in f32, as ONNX Runtime does with fp16 graphs on CPUs; the manifest says so.
    """
    if precision == "fp16":
        from resnet_hub.cpu import isa_facts

        return "f16" if isa_facts()["AVX512_FP16"] else "f32"
    return PRECISION_HINTS[precision]
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
# What the manifest calls the element types the plugin reports.
_TYPE_NAMES = {"float32": "fp32", "f32": "fp32", "bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "f16": "fp16"}


def require_openvino(purpose: str = "OpenVINO export and its verification") -> None:
    """openvino (and nncf, for int8) come with the ``openvino`` extra; name it when they are missing."""
    from resnet_hub.errors import MissingDependencyError

    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("openvino", "openvino", purpose) from exc


@dataclass(frozen=True)
class OpenVinoConfig:
    """How the CPU plugin compiles a model: the export's verification, evaluate / verify / predict and the benchmark
    all use this, so a figure is measured on the configuration the manifest records."""

    precision_hint: str = "f32"
    performance_hint: str = "LATENCY"
    threads: int | None = None  # None: the plugin's choice (all physical cores)
    streams: int | None = None  # None: what the performance hint implies
    pinning: bool = False

    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = {"INFERENCE_PRECISION_HINT": self.precision_hint,
                                 "PERFORMANCE_HINT": self.performance_hint, "ENABLE_CPU_PINNING": self.pinning}
        if self.threads:
            props["INFERENCE_NUM_THREADS"] = int(self.threads)
        if self.streams:
            props["NUM_STREAMS"] = int(self.streams)
        return props


def precision_name(element_type: Any) -> str:
    """'fp32' / 'bf16' / 'fp16' for an OpenVINO element type (as ``get_property`` returns it)."""
    text = str(getattr(element_type, "get_type_name", lambda: element_type)())
    text = text.replace("<Type: '", "").replace("'>", "")
    return _TYPE_NAMES.get(text, text)


def compile_openvino(model: Any, config: OpenVinoConfig = OpenVinoConfig()):
    """Compile an ``openvino.Model`` or a path to ``model.xml`` for the CPU with ``config``'s properties."""
    require_openvino("Running an OpenVINO model")
    import openvino as ov

    core = ov.Core()
    source = str(model) if isinstance(model, (str, os.PathLike)) else model
    return core.compile_model(source, "CPU", config.properties())


def inference_precision(compiled: Any) -> str:
    """The arithmetic the compiled model really runs in ('fp32', 'bf16', 'fp16')."""
    return precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))


def openvino_logits(
    model: Any,
    *,
    embedded_preprocessing: bool = False,
    data_config: dict[str, Any] | None = None,
    config: OpenVinoConfig = OpenVinoConfig(),
) -> Callable[[Any], np.ndarray]:
    """An OpenVINO model as a logits function of the normalised float (N, C, H, W) batch, like
    :func:`.runtime.onnx_logits`; a model with embedded preprocessing is fed that batch's uint8 NHWC pixels.

    The returned function carries ``compiled`` and ``precision`` (what really runs) as attributes.
    """
    from .runtime import runtime_input

    if embedded_preprocessing and data_config is None:
        raise ValueError("a model with embedded preprocessing needs the data config to rebuild its uint8 input")
    compiled = compile_openvino(model, config)
    request = compiled.create_infer_request()

    def run(x: Any) -> np.ndarray:
        feed = runtime_input(x, embedded_preprocessing, data_config)
        return np.array(request.infer({0: feed}, share_inputs=True)[0], copy=True)

    run.compiled = compiled  # type: ignore[attr-defined]
    run.precision = inference_precision(compiled)  # type: ignore[attr-defined]
    return run


def manifest_openvino_config(manifest: dict[str, Any]) -> OpenVinoConfig:
    """The configuration an OpenVINO export was verified with, as its manifest records it."""
    record = manifest.get("openvino", {}).get("runtime", {})
    return OpenVinoConfig(precision_hint=record.get("precision_hint", "f32"),
                          performance_hint=record.get("performance_hint", "LATENCY"),
                          threads=record.get("threads"), streams=record.get("streams"),
                          pinning=bool(record.get("pinning", False)))


def directory_runner(directory: Any, device: str = "cpu", threads: int | None = None) -> Callable[[Any], np.ndarray]:
    """``ExportDirectory``'s runner for format 'openvino': ``model.xml`` compiled as its manifest records (precision
    hint, performance hint), on the CPU plugin."""
    from dataclasses import replace

    from .directory import ExportDirectoryError

    if device != "cpu":
        raise ExportDirectoryError(f"{directory.path} is an OpenVINO export, run by OpenVINO's CPU plugin; "
                                   f"--device {device} applies to PyTorch and TensorRT targets")
    config = manifest_openvino_config(directory.manifest.data)
    if threads:
        config = replace(config, threads=threads)
    return openvino_logits(directory.graph_path, embedded_preprocessing=directory.pixel_input,
                           data_config=directory.data_config(), config=config)


def audit_runner(path: Path, data_config: dict[str, Any] | None) -> tuple[Callable[[Any], np.ndarray] | None, str]:
    """``verify``'s runner for ``model.xml`` (the manifest beside it gives the compile settings); (None, why) when
    OpenVINO is not installed."""
    from resnet_hub.errors import MissingDependencyError

    from .manifest import read_manifest
    from .names import MANIFEST_FILE

    try:
        require_openvino("Re-running an OpenVINO export's parity")
    except MissingDependencyError as exc:
        return None, str(exc)
    import openvino as ov

    config = manifest_openvino_config(read_manifest(path.parent / MANIFEST_FILE).data)
    run = openvino_logits(path, embedded_preprocessing=data_config is not None, data_config=data_config,
                          config=config)
    return run, f"OpenVINO {ov.get_version().split('-')[0]}, {run.precision} arithmetic"  # type: ignore[attr-defined]
