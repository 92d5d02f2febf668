"""ONNX export: a low-level writer (:func:`export_onnx_model`) and the verified export built on it.

Defaults are the ones production users want: eval mode, a dynamic batch axis named ``batch``, input
``input`` and output ``logits``, BatchNorm folded into the convolutions (dynamo: ``optimize=True``;
TorchScript: constant folding in eval mode), opset 20.

fp16 (``half=True``) exports the fp32 graph and converts it with ONNX Runtime's
``convert_float_to_float16(keep_io_types=True)`` rather than exporting a ``half()`` model, because
(1) BatchNorm is folded in fp32 before rounding, so the folded weights are rounded once instead of the
un-folded ones being multiplied in fp16, (2) the graph keeps fp32 inputs and outputs, so clients, Triton
configs and preprocessing are identical for both precisions, and (3) it does not need fp16 kernels in
PyTorch on the exporting machine (CPU export works).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .calibration_array import check_calibration_array
from .errors import ExportOptionError, VerificationError
from .files import StagedFiles, staging_prefix
from .graph_ops import onnx_signature
from .manifest import build_manifest, write_manifest
from .names import (
    BATCH_AXIS,
    INPUT_NAME,
    MANIFEST_FILE,
    MAX_IMG_SIZE,
    MIN_IMG_SIZE,
    ONNX_FILE,
    OUTPUT_NAME,
    PRECISIONS,
    data_file_name,
)
from .result import Artifact, ExportResult
from .runtime import onnx_logits
from .source import ModelSource, load_model_source, preprocessing_dict
from .verify import TOLERANCES, VerificationReport, check_onnx_file, compare_runtime, verification_batches

__all__ = ["BATCH_AXIS", "INPUT_NAME", "MANIFEST_FILE", "ONNX_FILE", "OUTPUT_NAME", "OnnxOptions", "data_file_name",
           "export_onnx", "export_onnx_model", "onnx_signature", "write_verified_onnx"]
EXPORTERS = ("dynamo", "torchscript")
# Opsets each exporter really produces (torch 2.14): dynamo silently raises anything below 18 to 18, and the
# TorchScript exporter stops at 20. Asking outside these ranges is an error rather than a surprise.
OPSET_RANGES: dict[str, tuple[int, int]] = {"dynamo": (18, 23), "torchscript": (9, 20)}
DEFAULT_OPSET = 20
# Images from --eval-data / --calib-data that verification compares PyTorch and the runtime on.
VERIFICATION_IMAGES = 64
# int8 without --eval-data: images of the calibration source kept out of calibration (up to 64, or 1/8 of a small
# set) and checked besides the calibration images.
HELD_OUT_IMAGES = 64

Progress = Callable[[str], None]


def require_onnx_stack() -> None:
    """onnx, onnxscript (dynamo exporter) and onnxruntime (verification) come with the ``onnx`` extra."""
    from resnet_hub.errors import MissingDependencyError

    for module, package in (("onnx", "onnx"), ("onnxscript", "onnxscript"), ("onnxruntime", "onnxruntime")):
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingDependencyError(package, "onnx", "ONNX export and its ONNX Runtime verification") from exc


def validate_onnx_options(
    *, input_shape: tuple[int, ...], dynamic_batch: bool, opset: int, exporter: str
) -> None:
    """Reject option combinations before any work is done, with a message that says what would work."""
    if exporter not in EXPORTERS:
        raise ExportOptionError(f"Unknown exporter '{exporter}'; choose one of: {', '.join(EXPORTERS)}")
    low, high = OPSET_RANGES[exporter]
    if not low <= opset <= high:
        hint = " (use --exporter torchscript for opsets below 18)" if exporter == "dynamo" and opset < low else ""
        hint = hint or (" (use --exporter dynamo for opsets above 20)" if exporter == "torchscript" and opset > high
                        else "")
        raise ExportOptionError(f"The {exporter} exporter supports opsets {low}-{high}, not {opset}{hint}")
    if len(input_shape) != 4 or any(int(d) < 1 for d in input_shape):
        raise ExportOptionError(f"input_shape must be (batch, channels, height, width) >= 1, got {input_shape}")
    if min(input_shape[2:]) < MIN_IMG_SIZE:
        raise ExportOptionError(f"image size {input_shape[2]}x{input_shape[3]} is below the {MIN_IMG_SIZE} px a "
                                f"ResNet downsamples to 1x1; use --img-size {MIN_IMG_SIZE} or larger")
    if max(input_shape[2:]) > MAX_IMG_SIZE:
        raise ExportOptionError(f"image size {input_shape[2]}x{input_shape[3]} is above the {MAX_IMG_SIZE} px an "
                                f"export accepts (one image's activations would take gigabytes); use --img-size "
                                f"{MAX_IMG_SIZE} or smaller")


def traced_batch_size(batch_size: int, dynamic_batch: bool, exporter: str) -> int:
    """The batch the graph is traced with: a dynamic graph is traced at >= 2 because the dynamo exporter
    (and older tracers) specialise a batch of 1 into a constant."""
    return max(2, batch_size) if dynamic_batch else batch_size


def export_onnx_model(
    model: torch.nn.Module,
    path: str | Path,
    *,
    input_shape: tuple[int, int, int, int],
    dynamic_batch: bool = True,
    opset: int = 20,
    exporter: str = "dynamo",
    single_file: bool = True,
    half: bool = False,
    pixel_normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Path:
    """Write ``model`` as ONNX at ``path`` (atomically; replaces an existing file) and return the path.

    No verification happens here; :func:`export_onnx` adds it. With ``single_file=False`` the weights go to
    ``<path>.data`` beside the graph. ``input_shape`` gives channels and image size; its batch is the traced
    (static) batch, raised to 2 for a dynamic graph. ``pixel_normalization=(mean, std)`` embeds preprocessing:
    the graph then takes uint8 (N, H, W, 3) pixels (:mod:`.preprocessing_graph`).
    """
    validate_onnx_options(input_shape=input_shape, dynamic_batch=dynamic_batch, opset=opset, exporter=exporter)
    require_onnx_stack()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = traced_batch_size(int(input_shape[0]), dynamic_batch, exporter)
    example = torch.randn(batch, *(int(d) for d in input_shape[1:]))
    if pixel_normalization is not None:
        from .preprocessing_graph import EmbeddedPreprocessing, check_embeddable

        height, width = check_embeddable(input_shape)
        model = EmbeddedPreprocessing(model, *pixel_normalization)
        example = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8,
                                generator=torch.Generator().manual_seed(0))
    data_name = data_file_name(path.name)
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=path.parent))
    try:
        staged = staging / path.name
        was_training = model.training
        model.eval()
        try:
            if exporter == "dynamo":
                _export_dynamo(model, example, staged, dynamic_batch, opset, single_file)
            else:
                _export_torchscript(model, example, staged, dynamic_batch, opset)
        finally:
            model.train(was_training)
        if half:
            _convert_to_fp16(staged)
        _save_layout(staged, single_file)
        # Data first, then the graph that references it.
        stale = path.parent / data_name
        if (staging / data_name).exists():
            os.replace(staging / data_name, stale)
        elif stale.exists():
            stale.unlink()
        os.replace(staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _quiet() -> contextlib.ExitStack:
    """The exporters print progress and warnings; library code must not, so both are captured."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _export_dynamo(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool, opset: int,
                   single_file: bool) -> None:
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: BATCH_AXIS},) if dynamic else None,
            opset_version=opset,
            external_data=not single_file,
            optimize=True,  # folds BatchNorm into Conv; without it ORT runs ~1.6x slower
            verbose=False,
        )


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool, opset: int) -> None:
    axes = {INPUT_NAME: {0: BATCH_AXIS}, OUTPUT_NAME: {0: BATCH_AXIS}} if dynamic else None
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,  # with eval mode this folds BatchNorm into the preceding Conv
            training=torch.onnx.TrainingMode.EVAL,
        )


def _convert_to_fp16(path: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(path))
    with _quiet():
        converted = convert_float_to_float16(model, keep_io_types=True)
    # The converter appends its input/output Cast nodes at the end of the node list, which the ONNX spec
    # (and onnx.checker) forbid: nodes must be topologically sorted.
    _toposort(converted.graph)
    _remove_data(path)
    onnx.save_model(converted, str(path))


def _toposort(graph) -> None:
    """Reorder ``graph.node`` topologically in place, keeping the original order wherever it is valid."""
    available = {value.name for value in graph.input} | {init.name for init in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ExportOptionError("The fp16 graph has a cycle or an undefined input; cannot sort it")
        for node in ready:
            available.update(node.output)
        ordered.extend(ready)
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _save_layout(path: Path, single_file: bool) -> None:
    """Rewrite the graph as one file or as graph + ``<name>.data``, whatever the exporter chose."""
    import onnx

    data = path.with_name(data_file_name(path.name))
    has_external = any(p for p in path.parent.iterdir() if p != path)
    if single_file and not has_external and path.stat().st_size < (1 << 31):
        return
    model = onnx.load(str(path))  # pulls external tensors into memory
    _remove_data(path)
    if single_file:
        if model.ByteSize() >= (1 << 31):
            raise ExportOptionError("The model is larger than ONNX's 2 GB single-file limit; export without "
                                    "--single-file (weights go to model.onnx.data)")
        onnx.save_model(model, str(path))
    else:
        # onnx appends to an existing data file, so it was removed first.
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)


def _remove_data(path: Path) -> None:
    for other in path.parent.iterdir():
        if other != path:
            other.unlink()


@dataclass(frozen=True)
class OnnxOptions:
    """Options of a verified ONNX export (CLI flags of ``resnet-hub export --format onnx``).

    ``precision``: fp32, fp16 (fp16 graph, fp32 inputs/outputs; ``half=True`` is an alias) or int8 (ONNX
    Runtime's QDQ quantization for CPUs, calibrated on ``calib_data``). ``eval_data`` turns on the accuracy
    gate; with ``calib_data`` / ``eval_data`` verification compares PyTorch and the runtime on those images.
    ``embed_preprocessing``: the graph takes decoded uint8 RGB pixels (N, H, W, 3) and normalises them itself.
    """

    batch_size: int = 1
    dynamic_batch: bool = True
    img_size: tuple[int, int] | None = None
    opset: int = DEFAULT_OPSET
    exporter: str = "dynamo"
    single_file: bool = True
    half: bool = False
    precision: str = "fp32"
    calib_data: str | None = None
    calib_limit: int = 512
    calib_method: str = "minmax"
    reduce_range: str = "auto"
    eval_data: str | None = None
    eval_limit: int | None = None
    max_accuracy_drop: float | None = None
    embed_preprocessing: bool = False

    @property
    def resolved_precision(self) -> str:
        return "fp16" if self.half else self.precision

    def input_shape(self, source: ModelSource) -> tuple[int, int, int, int]:
        c, h, w = source.data_config(self.img_size)["input_size"]
        return (self.batch_size, int(c), int(h), int(w))

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ExportOptionError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ExportOptionError(f"Unknown precision '{self.precision}'; choose one of: {', '.join(PRECISIONS)}")
        if self.half and self.precision not in ("fp32", "fp16"):
            raise ExportOptionError(f"--half means --precision fp16; it cannot be combined with --precision "
                                    f"{self.precision}")
        if self.resolved_precision == "int8" and not self.calib_data:
            raise ExportOptionError("--precision int8 needs calibration images: pass --calib-data SRC (a folder of "
                                    "images like those the model will see, or 'digits'); they are preprocessed "
                                    "with the weights' own preprocessing")
        if self.calib_limit < 1:
            raise ExportOptionError(f"--calib-limit must be >= 1, got {self.calib_limit}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ExportOptionError(f"--eval-limit must be >= 1, got {self.eval_limit}")
        if self.max_accuracy_drop is not None and not self.max_accuracy_drop >= 0:
            raise ExportOptionError(f"--max-accuracy-drop must be >= 0 points, got {self.max_accuracy_drop}")
        if self.max_accuracy_drop is not None and not self.eval_data:
            raise ExportOptionError("--max-accuracy-drop sets the accuracy gate's allowance, and the gate runs only on "
                                    "labelled images: add --eval-data SRC (a folder or 'digits'), or drop "
                                    "--max-accuracy-drop")
        # Sizes too small for a ResNet are explained by validate_onnx_options; hostile ones stop here, before any
        # tensor of that size is allocated.
        shape = (self.batch_size, 3) + (tuple(self.img_size) if self.img_size else (224, 224))
        if self.embed_preprocessing:
            from .preprocessing_graph import check_embeddable

            check_embeddable(shape)  # a dynamic size (None / -1) cannot be embedded: said before the size checks
        # None / -1 is a dynamic axis (validate_onnx_options judges it); a fixed size is bounded here.
        if self.img_size is not None and (len(self.img_size) != 2 or any(
                v is not None and not int(v) <= 0 and not 1 <= int(v) <= MAX_IMG_SIZE for v in self.img_size)):
            raise ExportOptionError(f"--img-size must be two sizes of {MIN_IMG_SIZE}-{MAX_IMG_SIZE} px (H W), got "
                                    f"{' '.join(str(v) for v in self.img_size)}")
        validate_onnx_options(input_shape=shape, dynamic_batch=self.dynamic_batch, opset=self.opset,
                              exporter=self.exporter)


@dataclass(frozen=True)
class VerifiedOnnx:
    """An ONNX file written and verified inside a staging directory."""

    path: Path
    signature: dict[str, Any]
    verification: VerificationReport
    input_shape: tuple[int, int, int, int]
    timings: dict[str, float]
    precision: str = "fp32"
    accuracy: Any = None  # AccuracyReport when eval data was given
    int8: Any = None  # Int8Record for int8 graphs
    warnings: tuple[str, ...] = ()
    data: dict[str, Any] | None = None  # what real images verification / calibration / the gate used
    pixel_input: dict[str, Any] | None = None  # embedded preprocessing: what the graph takes (manifest "input")

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """One input without the batch axis, as the graph takes it: (C, H, W), or (H, W, 3) for pixel input."""
        channels, height, width = (int(d) for d in self.input_shape[1:])
        return (height, width, channels) if self.pixel_input is not None else (channels, height, width)


@dataclass
class _RealData:
    """Labelled and calibration images for one export, read and preprocessed once."""

    eval: Any = None  # resnet_hub.tasks.evaluate.PreparedData
    calibration: Any = None  # float32 (N, C, H, W)
    calibration_count: int = 0
    calibration_skipped: int = 0
    held_out: Any = None  # float32 (K, C, H, W): images of the calibration source the quantizer never saw

    def verification_images(self) -> torch.Tensor | None:
        if self.eval is not None:
            return self.eval.head(VERIFICATION_IMAGES)
        if self.calibration is not None:
            # Held-out images first: a graph calibrated on a narrow set can agree with PyTorch on that very set
            # and not on the next image; the calibration images follow.
            held = self.held_out if self.held_out is not None else self.calibration[:0]
            return torch.from_numpy(np.concatenate([held, self.calibration[:VERIFICATION_IMAGES]]))
        return None


def _read_real_data(source: ModelSource, options: OnnxOptions, data_config: dict[str, Any],
                    say: Progress) -> tuple[_RealData, list[str]]:
    from .calibration import load_calibration

    real = _RealData()
    warnings_: list[str] = []
    if options.eval_data:
        from resnet_hub.errors import DatasetError, EvaluationError
        from resnet_hub.tasks.evaluate import class_mapping, prepare

        say(f"reading labelled images from {options.eval_data}")
        try:
            real.eval = prepare(options.eval_data, data_config,
                                lambda classes: class_mapping(classes, source.label_names, source.num_classes),
                                limit=options.eval_limit)
        except (DatasetError, EvaluationError) as exc:
            raise ExportOptionError(f"--eval-data {options.eval_data}: {exc}") from exc
    if options.resolved_precision == "int8":
        from .int8_onnxruntime import MIN_CALIBRATION_IMAGES

        say(f"reading calibration images from {options.calib_data}")
        images, count, real.calibration_skipped = load_calibration(
            options.calib_data, data_config, limit=options.calib_limit + HELD_OUT_IMAGES)  # type: ignore[arg-type]
        check_calibration_array(images, f"--calib-data {options.calib_data}")
        kept = options.calib_limit if count > options.calib_limit else count - min(HELD_OUT_IMAGES, count // 8)
        real.calibration, real.held_out, real.calibration_count = images[:kept], images[kept:], kept
        if real.calibration_count < MIN_CALIBRATION_IMAGES:
            warnings_.append(f"only {real.calibration_count} calibration image(s) were used; int8 ranges from fewer "
                             f"than {MIN_CALIBRATION_IMAGES} images may not cover the deployment data")
        if real.calibration_skipped:
            warnings_.append(f"{real.calibration_skipped} unreadable calibration file(s) were skipped")
    return real, warnings_


def write_verified_onnx(source: ModelSource, directory: Path, options: OnnxOptions,
                        progress: Progress | None = None, name: str = ONNX_FILE) -> VerifiedOnnx:
    """Export into ``directory``, verify, and apply the accuracy gate when ``options.eval_data`` is given.

    Raises :class:`VerificationError` if PyTorch is not reproduced, :class:`AccuracyGateError` if the artifact
    loses more accuracy than allowed. TensorRT and Triton exports call this too, so every ONNX file the package
    writes has passed these checks.
    """
    options.validate()
    say = progress or (lambda _message: None)
    shape = options.input_shape(source)
    precision = options.resolved_precision
    data_config = source.data_config(options.img_size)
    timings: dict[str, float] = {}
    real, warnings_ = _read_real_data(source, options, data_config, say)
    embedded = options.embed_preprocessing
    # (mean, std) when the graph takes uint8 pixels and normalises them itself.
    pixels = (tuple(data_config["mean"]), tuple(data_config["std"])) if embedded else None
    say(f"exporting {source.name} to ONNX ({options.exporter}, opset {options.opset}, {precision}"
        + (", preprocessing embedded: uint8 NHWC input)" if embedded else ")"))
    start = time.perf_counter()
    int8_record = None
    if precision == "int8":
        from .int8_onnxruntime import quantize_for_cpu
        from .runtime import to_uint8_nhwc

        with tempfile.TemporaryDirectory(prefix=staging_prefix(), dir=directory) as tmp:
            fp32 = export_onnx_model(source.model, Path(tmp) / "fp32.onnx", input_shape=shape,
                                     dynamic_batch=options.dynamic_batch, opset=options.opset,
                                     exporter=options.exporter, single_file=True, pixel_normalization=pixels)
            say(f"quantizing to int8 (ONNX Runtime QDQ, per-channel) on {real.calibration_count} calibration images")
            # A pixel-input graph is calibrated on the same images as pixels (exact: they came from 8-bit images).
            calibration = to_uint8_nhwc(real.calibration, *pixels) if pixels else real.calibration
            int8_record = quantize_for_cpu(fp32, directory / name, calibration, input_name=INPUT_NAME,
                                           method=options.calib_method, reduce_range=options.reduce_range,
                                           calibration_source=str(options.calib_data))
        path = directory / name
        _save_layout(path, options.single_file)
    else:
        path = export_onnx_model(source.model, directory / name, input_shape=shape,
                                 dynamic_batch=options.dynamic_batch, opset=options.opset, exporter=options.exporter,
                                 single_file=options.single_file, half=precision == "fp16",
                                 pixel_normalization=pixels)
    timings["export_s"] = time.perf_counter() - start
    say("checking the graph (onnx.checker full_check)")
    start = time.perf_counter()
    try:
        checker = check_onnx_file(path)
    except Exception as exc:  # onnx raises ValidationError / InferenceError subclasses
        raise VerificationError(f"The exported graph fails onnx.checker: {exc}") from exc
    traced = traced_batch_size(options.batch_size, options.dynamic_batch, options.exporter)
    batches = verification_batches(traced, options.dynamic_batch)
    images = real.verification_images()
    say(f"comparing ONNX Runtime with PyTorch at batch sizes {', '.join(map(str, batches))}"
        + (f" and on {len(images)} real images" if images is not None else ""))
    # With pixel input the runner gets the normalised batch as the uint8 pixels a client would send, and PyTorch
    # gets those pixels after timm's normalisation (for real images: exactly timm's tensor).
    runner = onnx_logits(path, embedded_preprocessing=embedded, data_config=data_config, input_name=INPUT_NAME)
    reference = source.model
    if pixels:
        from .preprocessing_graph import PixelGrid

        reference = PixelGrid(source.model, *pixels)
    runtime = "ONNX Runtime (CPU, uint8 pixel input)" if pixels else "ONNX Runtime (CPU)"
    report = compare_runtime(reference, runner, chw=shape[1:], batch_sizes=batches,
                             tolerance=TOLERANCES[precision], artifact=path.name, runtime=runtime,
                             checker=checker, images=images,
                             max_batch=None if options.dynamic_batch else options.batch_size)
    timings["verify_s"] = time.perf_counter() - start
    if not report.passed:
        advice = report.advice(precision)
        raise VerificationError(f"ONNX export of {source.name} does not match PyTorch: {report.describe()}.{advice} "
                                "Nothing was written.", report)
    accuracy = None
    if real.eval is not None:
        from .accuracy import accuracy_gate
        from resnet_hub.tasks.evaluate import torch_logits

        say(f"accuracy gate: PyTorch vs ONNX Runtime on {len(real.eval)} labelled images")
        start = time.perf_counter()
        static = None if options.dynamic_batch else options.batch_size
        accuracy = accuracy_gate(torch_logits(source.model), runner, real.eval, precision=precision,
                                 runtime=f"ONNX Runtime {precision}", max_accuracy_drop=options.max_accuracy_drop,
                                 batch_size=static or 32)
        timings["accuracy_s"] = time.perf_counter() - start
        if accuracy.skipped_files:
            warnings_.append(f"{accuracy.skipped_files} unreadable file(s) in --eval-data were skipped")
    data = dict(
        verification_images=None if images is None else (
            dict(source=options.eval_data, split="val", n=len(images)) if real.eval is not None
            else dict(source=options.calib_data, split="calib", n=len(images),
                      held_out=0 if real.held_out is None else len(real.held_out))),
    )
    pixel_input = None
    if embedded:
        from .preprocessing_graph import pixel_input_record

        pixel_input = pixel_input_record(shape)
    return VerifiedOnnx(path=path, signature=onnx_signature(path), verification=report, input_shape=shape,
                        timings=timings, precision=precision, accuracy=accuracy, int8=int8_record,
                        warnings=tuple(warnings_), data=data, pixel_input=pixel_input)


def manifest_preprocessing(source: ModelSource, options: OnnxOptions) -> dict[str, Any]:
    """The manifest's preprocessing record, marked as embedded when the graph takes pixels."""
    preprocessing = preprocessing_dict(source, options.img_size)
    if options.embed_preprocessing:
        from .preprocessing_graph import with_embedded_preprocessing

        preprocessing = with_embedded_preprocessing(preprocessing)
    return preprocessing


def manifest_extra(verified: VerifiedOnnx) -> dict[str, Any]:
    """The manifest sections an ONNX file adds beyond the common ones: accuracy, int8 record, warnings."""
    extra: dict[str, Any] = {"precision": verified.precision}
    if verified.pixel_input is not None:
        extra["input"] = verified.pixel_input
    if verified.accuracy is not None:
        extra["accuracy"] = verified.accuracy.to_dict()
    if verified.int8 is not None:
        extra["int8"] = asdict(verified.int8)
    if verified.data and verified.data.get("verification_images"):
        extra["verification_images"] = verified.data["verification_images"]
    if verified.warnings:
        extra["warnings"] = list(verified.warnings)
    return extra


def export_onnx(
    model: str | ModelSource,
    output: str | os.PathLike,
    options: OnnxOptions = OnnxOptions(),
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Export a registered variant to ``output/model.onnx`` (+ data file), verified, with ``manifest.json``.

    Nothing appears in ``output`` unless every check passed; existing artifacts are kept unless ``force``.
    """
    options.validate()
    require_onnx_stack()
    output = Path(output)
    names = (ONNX_FILE, data_file_name(ONNX_FILE), MANIFEST_FILE)
    staged = StagedFiles(output, names, force=force)
    with staged as stage:  # refuses an existing artifact before the (slow) model build
        source = model if isinstance(model, ModelSource) else _load(model, weights, pretrained, progress)
        onnx_file = write_verified_onnx(source, stage, options, progress)
        manifest = build_manifest(
            source,
            fmt="onnx",
            options=options_dict(options),
            signature=onnx_file.signature,
            preprocessing=manifest_preprocessing(source, options),
            verifications=[onnx_file.verification],
            files=[p for p in stage.iterdir()],
            root=stage,
            extra=manifest_extra(onnx_file),
        )
        write_manifest(stage / MANIFEST_FILE, manifest)
    final = output / ONNX_FILE
    artifacts = [Artifact.of(final, "onnx")]
    if (output / data_file_name(ONNX_FILE)).exists():
        artifacts.append(Artifact.of(output / data_file_name(ONNX_FILE), "onnx-data"))
    artifacts.append(Artifact.of(output / MANIFEST_FILE, "manifest"))
    return ExportResult(format="onnx", model=source.name, output=output, artifacts=tuple(artifacts),
                        verifications=(onnx_file.verification,), manifest=manifest, timings=onnx_file.timings,
                        run_hint=ort_hint(final, onnx_file.input_shape, pixels=options.embed_preprocessing),
                        accuracy=(onnx_file.accuracy,) if onnx_file.accuracy is not None else (),
                        warnings=onnx_file.warnings)


def _load(name: str, weights, pretrained: bool, progress: Progress | None) -> ModelSource:
    if progress:
        progress(f"building {name}")
    return load_model_source(name, weights=weights, pretrained=pretrained)


def options_dict(options: OnnxOptions) -> dict[str, Any]:
    values = asdict(options)
    values["precision"] = options.resolved_precision
    values["img_size"] = list(options.img_size) if options.img_size else None
    values["input_name"], values["output_name"], values["batch_axis"] = INPUT_NAME, OUTPUT_NAME, BATCH_AXIS
    return values


def ort_hint(path: Path, shape: tuple[int, int, int, int], pixels: bool = False) -> str:
    """How to run the result: a short onnxruntime snippet."""
    if pixels:
        return (
            "import numpy as np, onnxruntime as ort\n"
            f"session = ort.InferenceSession({str(path)!r}, providers=['CPUExecutionProvider'])\n"
            "# decoded RGB pixels, resized and center-cropped; the graph scales and normalises them itself\n"
            f"logits = session.run(['{OUTPUT_NAME}'], {{'{INPUT_NAME}': np.zeros((1, {shape[2]}, {shape[3]}, 3), "
            "np.uint8)})[0]"
        )
    return (
        "import numpy as np, onnxruntime as ort\n"
        f"session = ort.InferenceSession({str(path)!r}, providers=['CPUExecutionProvider'])\n"
        f"logits = session.run(['{OUTPUT_NAME}'], {{'{INPUT_NAME}': np.zeros((1, {shape[1]}, {shape[2]}, {shape[3]}), "
        "np.float32)})[0]"
    )
