"""OpenVINO export: ``model.xml`` + ``model.bin`` (OpenVINO IR) + ``manifest.json``, verified in OpenVINO's runtime.

The IR is converted with ``openvino.convert_model`` from the ONNX graph our ONNX export writes and verifies
(BatchNorm folded, dynamic batch, input ``input``, output ``logits``), so both formats start from the same checked
graph. Precisions:

- ``fp32``: f32 weights, compiled with ``INFERENCE_PRECISION_HINT: f32`` (without it the CPU plugin runs bf16 on
  CPUs with avx512_bf16 / AMX).
- ``fp16``: weights stored as fp16 (half the file), compiled with ``f16`` on CPUs with fp16 arithmetic and ``f32``
  elsewhere (an f16 request becomes bf16 on avx512_bf16 / AMX CPUs, outside fp16's tolerance:
  ``openvino_runtime.precision_hint``); the precision that ran verification is recorded
  (``openvino.runtime.inference_precision``) and held to fp16's tolerance and accuracy allowance.
- ``int8``: NNCF post-training quantization (:mod:`.int8_openvino`) on ``--calib-data`` preprocessed with the
  weights' own preprocessing, like ONNX int8.

``--embed-preprocessing`` adds OpenVINO's PrePostProcessor in front of the model (after quantization): uint8 NHWC
pixels in, cast, /255, mean/std and NHWC -> NCHW inside, verified on pixels against timm's preprocessing like the
ONNX pixel graph. Real-image reading, staging, the manifest, parity statistics and the accuracy gate are the ONNX
export's (``onnx.py``, ``files.py``, ``manifest.py``, ``verify.py``, ``accuracy.py``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from resnet_hub.cpu import isa_facts

from .errors import ExportOptionError, VerificationError
from .files import StagedFiles, staging_prefix
from .manifest import build_manifest, write_manifest
from .names import BIN_FILE, FORMAT_OPENVINO, INPUT_NAME, MANIFEST_FILE, OUTPUT_NAME, XML_FILE
from .onnx import (OnnxOptions, Progress, _load, _read_real_data, manifest_preprocessing, options_dict,
                   require_onnx_stack, traced_batch_size, write_verified_onnx)
from .openvino_runtime import OpenVinoConfig, openvino_logits, precision_hint, require_openvino
from .result import Artifact, ExportResult
from .source import ModelSource
from .verify import TOLERANCES, compare_runtime, verification_batches


@dataclass(frozen=True)
class OpenVinoOptions:
    """OpenVINO-specific settings; the shared ones (precision, data, gate, preprocessing) are ``OnnxOptions``."""

    performance_hint: str = "LATENCY"
    threads: int | None = None
    preset: str = "performance"
    fast_bias_correction: bool = True
    range_estimator: str = "minmax"


def openvino_signature(model: Any) -> dict[str, Any]:
    """Inputs / outputs (names, element types, shapes with '?' as 'batch') and op counts of an ``openvino.Model``."""

    def describe(ports) -> list[dict[str, Any]]:
        out = []
        for port in ports:
            shape = port.get_partial_shape()
            dims = ["batch" if d.is_dynamic else d.get_length() for d in shape]
            out.append(dict(name=port.get_any_name(), dtype=port.get_element_type().get_type_name(), shape=dims))
        return out

    counts: dict[str, int] = {}
    for op in model.get_ordered_ops():
        counts[op.get_type_name()] = counts.get(op.get_type_name(), 0) + 1
    return dict(inputs=describe(model.inputs), outputs=describe(model.outputs), opset=None,
                op_counts=dict(sorted(counts.items(), key=lambda kv: -kv[1])))


def embed_pixel_preprocessing(model: Any, mean, std) -> Any:
    """uint8 NHWC pixels in: PrePostProcessor's cast, /255, (x - mean) / std and layout change, as timm's
    ToTensor + Normalize do them (same order, f32)."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0).mean(list(mean)).scale(list(std))
    return ppp.build()


def export_openvino(
    model: str | ModelSource,
    output: str | os.PathLike,
    options: OnnxOptions = OnnxOptions(),
    openvino: OpenVinoOptions = OpenVinoOptions(),
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Export to ``output/model.xml`` + ``model.bin`` + ``manifest.json``, verified in OpenVINO against PyTorch.

    Nothing appears in ``output`` unless every check (parity at batch 1 and N on real images when given, the
    accuracy gate with ``eval_data``) passed; existing artifacts are kept unless ``force``.
    """
    options.validate()
    if openvino.performance_hint not in ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"):
        raise ExportOptionError(f"Unknown performance hint '{openvino.performance_hint}'; choose LATENCY or "
                                "THROUGHPUT")
    require_openvino()
    require_onnx_stack()
    if options.resolved_precision == "int8":
        from .int8_openvino import require_nncf

        require_nncf()
    output = Path(output)
    say = progress or (lambda _message: None)
    staged = StagedFiles(output, (XML_FILE, BIN_FILE, MANIFEST_FILE), force=force)
    with staged as stage:  # refuses an existing artifact before the (slow) model build
        source = model if isinstance(model, ModelSource) else _load(model, weights, pretrained, progress)
        built = _write_verified_openvino(source, stage, options, openvino, say)
        manifest = build_manifest(
            source,
            fmt=FORMAT_OPENVINO,
            options={**options_dict(options), "openvino": asdict(openvino)},
            signature=built["signature"],
            preprocessing=manifest_preprocessing(source, options),
            verifications=built["verifications"],
            files=[stage / XML_FILE, stage / BIN_FILE],
            root=stage,
            extra=built["extra"],
            extra_versions=_versions(),
        )
        write_manifest(stage / MANIFEST_FILE, manifest)
    artifacts = (Artifact.of(output / XML_FILE, "openvino-xml"), Artifact.of(output / BIN_FILE, "openvino-bin"),
                 Artifact.of(output / MANIFEST_FILE, "manifest"))
    return ExportResult(format="openvino", model=source.name, output=output, artifacts=artifacts,
                        verifications=(built["onnx_verification"], *built["verifications"]), manifest=manifest,
                        timings=built["timings"],
                        run_hint=openvino_hint(output / XML_FILE, built["input_shape"], built["runtime"],
                                               options.embed_preprocessing),
                        accuracy=(built["accuracy"],) if built["accuracy"] is not None else (),
                        warnings=tuple(built["warnings"]))


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for package in ("openvino", "nncf"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _write_verified_openvino(source: ModelSource, stage: Path, options: OnnxOptions, ov_options: OpenVinoOptions,
                             say: Progress) -> dict[str, Any]:
    import openvino as ov

    precision = options.resolved_precision
    shape = options.input_shape(source)
    data_config = source.data_config(options.img_size)
    embedded = options.embed_preprocessing
    timings: dict[str, float] = {}
    real, warnings_ = _read_real_data(source, options, data_config, say)
    start = time.perf_counter()
    # The fp32 float-input ONNX graph the ONNX export verifies (ONNX Runtime vs PyTorch), then converted.
    onnx_options = dataclasses.replace(options, precision="fp32", half=False, eval_data=None, calib_data=None,
                                       embed_preprocessing=False, single_file=True)
    with tempfile.TemporaryDirectory(prefix=staging_prefix(), dir=stage) as tmp:
        say(f"exporting {source.name} to ONNX and checking it in ONNX Runtime (the graph OpenVINO converts)")
        onnx_file = write_verified_onnx(source, Path(tmp), onnx_options, None)
        say(f"converting to OpenVINO IR ({precision})")
        model = ov.convert_model(str(onnx_file.path))
    int8_record = None
    if precision == "int8":
        from .int8_openvino import quantize_openvino

        say(f"quantizing to int8 with NNCF ({ov_options.preset} preset) on {real.calibration_count} calibration "
            "images")
        model, int8_record = quantize_openvino(model, real.calibration, preset=ov_options.preset,
                                               fast_bias_correction=ov_options.fast_bias_correction,
                                               range_estimator=ov_options.range_estimator,
                                               calibration_source=str(options.calib_data))
    pixels = (tuple(data_config["mean"]), tuple(data_config["std"])) if embedded else None
    if pixels:
        model = embed_pixel_preprocessing(model, *pixels)
    ov.save_model(model, str(stage / XML_FILE), compress_to_fp16=precision == "fp16")
    timings["export_s"] = time.perf_counter() - start

    config = OpenVinoConfig(precision_hint=precision_hint(precision), performance_hint=ov_options.performance_hint,
                            threads=ov_options.threads)
    runner = openvino_logits(stage / XML_FILE, embedded_preprocessing=embedded, data_config=data_config,
                             config=config)
    # What really runs: the plugin's arithmetic, and for int8 the quantized ops around it.
    runs = runner.precision  # type: ignore[attr-defined]
    arithmetic = f"int8 + {runs}" if precision == "int8" else runs
    traced = traced_batch_size(options.batch_size, options.dynamic_batch, options.exporter)
    batches = verification_batches(traced, options.dynamic_batch)
    images = real.verification_images()
    runtime = f"OpenVINO {ov.get_version().split('-')[0]} (CPU, {arithmetic}" + (
        ", uint8 pixel input)" if pixels else ")")
    say(f"comparing OpenVINO ({arithmetic}) with PyTorch at batch sizes {', '.join(map(str, batches))}"
        + (f" and on {len(images)} real images" if images is not None else ""))
    start = time.perf_counter()
    reference = source.model
    if pixels:
        from .preprocessing_graph import PixelGrid

        reference = PixelGrid(source.model, *pixels)
    report = compare_runtime(reference, runner, chw=shape[1:], batch_sizes=batches, tolerance=TOLERANCES[precision],
                             artifact=XML_FILE, runtime=runtime, checker="openvino.Core.read_model + compile_model",
                             images=images, max_batch=None if options.dynamic_batch else options.batch_size)
    timings["verify_s"] = time.perf_counter() - start
    if not report.passed:
        raise VerificationError(f"OpenVINO export of {source.name} does not match PyTorch: {report.describe()}."
                                f"{report.advice(precision)} Nothing was written.", report)
    accuracy = None
    if real.eval is not None:
        from resnet_hub.tasks.evaluate import torch_logits

        from .accuracy import accuracy_gate

        say(f"accuracy gate: PyTorch vs OpenVINO on {len(real.eval)} labelled images")
        start = time.perf_counter()
        accuracy = accuracy_gate(torch_logits(source.model), runner, real.eval, precision=precision,
                                 runtime=f"OpenVINO {precision} ({arithmetic})",
                                 max_accuracy_drop=options.max_accuracy_drop,
                                 batch_size=32 if options.dynamic_batch else options.batch_size)
        timings["accuracy_s"] = time.perf_counter() - start
    if precision == "fp16" and runs != "fp16":
        warnings_.append(f"this CPU has no fp16 arithmetic: OpenVINO computes the fp16 model (fp16 weights) in {runs} "
                         "(its bf16 would exceed fp16's tolerance); verified and gated as run")
    extra: dict[str, Any] = {"precision": precision}
    if pixels:
        from .preprocessing_graph import pixel_input_record

        extra["input"] = pixel_input_record(shape)
    if accuracy is not None:
        extra["accuracy"] = accuracy.to_dict()
    if int8_record is not None:
        extra["int8"] = asdict(int8_record)
    if images is not None:
        extra["verification_images"] = (dict(source=options.eval_data, split="val", n=len(images))
                                        if real.eval is not None
                                        else dict(source=options.calib_data, split="calib", n=len(images)))
    if warnings_:
        extra["warnings"] = list(warnings_)
    extra["openvino"] = dict(
        converted_from="ONNX (the ONNX export's verified fp32 graph) with openvino.convert_model",
        source_onnx_verification=onnx_file.verification.describe(),
        weights_dtype="fp16" if precision == "fp16" else ("int8 (FakeQuantize)" if precision == "int8" else "fp32"),
        runtime=dict(device="CPU", precision_hint=config.precision_hint, inference_precision=runs,
                     arithmetic=arithmetic,
                     performance_hint=config.performance_hint, threads=config.threads, streams=config.streams,
                     pinning=config.pinning),
        cpu_isa=isa_facts(),
        embedded_preprocessing="PrePostProcessor: u8 NHWC -> f32, /255, (x - mean) / std, NCHW" if pixels else None,
    )
    return dict(signature=openvino_signature(model),
                verifications=[report], onnx_verification=onnx_file.verification, extra=extra, timings=timings,
                accuracy=accuracy,
                warnings=warnings_, input_shape=shape, runtime=runs)


def openvino_hint(path: Path, shape: tuple[int, int, int, int], runs: str, pixels: bool) -> str:
    """How to run the result: a short openvino snippet with the precision hint that was verified."""
    feed = (f"np.zeros((1, {shape[2]}, {shape[3]}, 3), np.uint8)" if pixels
            else f"np.zeros((1, {shape[1]}, {shape[2]}, {shape[3]}), np.float32)")
    return (
        "import numpy as np, openvino as ov\n"
        f"compiled = ov.Core().compile_model({str(path)!r}, 'CPU', {{'INFERENCE_PRECISION_HINT': "
        f"'{'f32' if runs == 'fp32' else 'f16'}', 'PERFORMANCE_HINT': 'LATENCY'}})  # verified in {runs}\n"
        f"logits = compiled({feed})['{OUTPUT_NAME}']"
    )


__all__ = ["BIN_FILE", "INPUT_NAME", "OpenVinoOptions", "XML_FILE", "export_openvino", "openvino_signature"]
