"""``resnet-hub export``: a thin CLI over the ``export`` package (ONNX, TensorRT, Triton).

The library does the work and returns an ``ExportResult``; this module only turns flags into options, shows
progress and prints the summary (paths, sizes, parity figures, how to run the result).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional, Tuple, cast

import typer
from rich.console import Console
from rich.table import Table

from .text import plain


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def export_command(
    name: str = typer.Argument(..., help="Variant, optionally with a pretrained tag: myresnet50.a1_in1k"),
    format: str = typer.Option("onnx", "--format", "-f", help="onnx | tensorrt | triton | openvino"),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (Triton: the model repository)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local .safetensors weights to export."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Download the default (or NAME.tag) pretrained weights."),
    batch_size: int = typer.Option(1, "--batch-size", help="Trace batch (the fixed batch with --static-batch)."),
    dynamic_batch: bool = typer.Option(True, "--dynamic-batch/--static-batch", help="Dynamic 'batch' axis."),
    img_size: Optional[Tuple[int, int]] = typer.Option(None, "--img-size",
                                                       help="H W, 32-4096 px (default: the weights' size)."),
    opset: int = typer.Option(20, "--opset", help="ONNX opset (dynamo 18-23, torchscript 9-20)."),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="fp32 | fp16 | int8 (default: fp32 for onnx/triton, fp16 for tensorrt). ONNX int8 "
                                  "is ONNX Runtime QDQ for CPUs; OpenVINO int8 is NNCF; TensorRT int8 uses ModelOpt "
                                  "Q/DQ."),
    half: bool = typer.Option(False, "--half", help="Alias of --precision fp16 (fp16 graph, fp32 inputs/outputs)."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data",
                                             help="int8 calibration images: a folder (flat or per class) or 'digits'."),
    calib_dir: Optional[str] = typer.Option(None, "--calib-dir", hidden=True, help="Old name of --calib-data."),
    calib_limit: int = typer.Option(512, "--calib-limit", help="At most this many calibration images (a seeded "
                                                                "sample over the whole set)."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Labelled images (folder or 'digits'): gate "
                                                                      "the export on its accuracy vs PyTorch."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="Gate on at most this many images."),
    max_accuracy_drop: Optional[float] = typer.Option(
        None, "--max-accuracy-drop",
        help="Allowed top-1 drop in points with --eval-data (default fp32 0.1, fp16 0.5, int8 1.0)."),
    embed_preprocessing: bool = typer.Option(
        False, "--embed-preprocessing",
        help="The graph takes decoded uint8 RGB pixels (N, H, W, 3; resized and cropped by the client) and does the "
             "cast, /255, mean/std normalisation and NHWC->NCHW itself. Needs a fixed image size."),
    exporter: str = typer.Option("dynamo", "--exporter", help="dynamo | torchscript"),
    single_file: bool = typer.Option(True, "--single-file/--external-data",
                                     help="One .onnx file, or weights in model.onnx.data."),
    force: bool = typer.Option(False, "--force", help="Replace existing artifacts."),
    min_batch: Optional[int] = typer.Option(None, "--min-batch", help="TensorRT profile min batch (default 1)."),
    opt_batch: Optional[int] = typer.Option(None, "--opt-batch", help="TensorRT profile optimum (default 8)."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch",
                                            help="TensorRT profile max batch / Triton max_batch_size (default 32)."),
    workspace_mib: int = typer.Option(4096, "--workspace-mib", help="TensorRT workspace limit in MiB."),
    workspace: Optional[int] = typer.Option(None, "--workspace", hidden=True, help="Old name of --workspace-mib."),
    optimization_level: int = typer.Option(3, "--optimization-level", help="TensorRT builder level 0-5."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="TensorRT timing cache file to reuse."),
    use_timing_cache: bool = typer.Option(True, "--use-timing-cache/--no-timing-cache"),
    version_compatible: bool = typer.Option(False, "--version-compatible",
                                            help="TensorRT: an engine later TensorRT versions can load."),
    hardware_compatibility: str = typer.Option("same", "--hardware-compatibility",
                                               help="TensorRT: same (this GPU architecture) | ampere+ (any GPU "
                                                    "of compute capability >= 8.0)."),
    engine_cache: bool = typer.Option(True, "--engine-cache/--no-engine-cache",
                                      help="TensorRT: reuse an engine built from the same graph, settings, "
                                           "TensorRT version and GPU architecture."),
    triton_name: Optional[str] = typer.Option(None, "--triton-name", help="Triton model name prefix."),
    preferred_batch: List[int] = typer.Option([], "--preferred-batch", help="Triton preferred batch size (repeat)."),
    queue_delay_us: int = typer.Option(100, "--queue-delay-us", help="Triton dynamic batching max queue delay."),
    instance_count: int = typer.Option(1, "--instance-count", help="Triton instance count."),
    instances: Optional[int] = typer.Option(None, "--instances", hidden=True, help="Old name of --instance-count."),
    instance_kind: str = typer.Option("auto", "--instance-kind", help="Triton ONNX instances: auto | cpu | gpu"),
    with_tensorrt: bool = typer.Option(False, "--with-tensorrt", help="Triton: also build and add the TensorRT plan."),
) -> None:
    """Export a model to ONNX, OpenVINO, a TensorRT engine or a Triton model repository, verified against PyTorch."""
    from resnet_hub.export import export
    from resnet_hub.export.api import check_batch_options
    from resnet_hub.export.onnx import OnnxOptions
    from resnet_hub.export.tensorrt import TensorRTOptions
    from resnet_hub.export.triton import TritonOptions

    check_batch_options(format, min_batch, opt_batch, max_batch, with_tensorrt)
    if half and precision not in (None, "fp16"):
        raise typer.BadParameter(f"--half means --precision fp16; it cannot be combined with --precision {precision}")
    chosen = "fp16" if half else precision
    calib = calib_data or calib_dir
    # TensorRT makes its own precision from an fp32 ONNX graph; ONNX and Triton's ONNX model take it directly.
    onnx_precision = "fp32" if format == "tensorrt" else (chosen or "fp32")
    onnx_options = OnnxOptions(batch_size=batch_size, dynamic_batch=dynamic_batch,
                               # typer's (int, int) option
                               img_size=cast("tuple[int, int]", tuple(img_size)) if img_size else None,
                               opset=opset, exporter=exporter,
                               single_file=single_file, precision=onnx_precision,
                               calib_data=calib if onnx_precision == "int8" else None, calib_limit=calib_limit,
                               eval_data=eval_data, eval_limit=eval_limit, max_accuracy_drop=max_accuracy_drop,
                               embed_preprocessing=embed_preprocessing)
    trt_options = TensorRTOptions(precision=chosen or "fp16", min_batch=min_batch, opt_batch=opt_batch,
                                  max_batch=max_batch, workspace_mib=workspace_mib if workspace is None else workspace,
                                  optimization_level=optimization_level,
                                  timing_cache=timing_cache, use_timing_cache=use_timing_cache,
                                  calib_data=calib, calib_limit=calib_limit,
                                  version_compatible=version_compatible,
                                  hardware_compatibility=hardware_compatibility, engine_cache=engine_cache)
    triton_options = TritonOptions(model_name=triton_name, max_batch_size=max_batch,
                                   preferred_batch_sizes=tuple(preferred_batch) or None,
                                   max_queue_delay_us=queue_delay_us,
                                   instance_count=instance_count if instances is None else instances,
                                   instance_kind=instance_kind, include_tensorrt=with_tensorrt)
    err = Console(stderr=True)
    start = time.perf_counter()
    last = [start]
    with err.status(f"exporting {name} to {format}") as status:
        def progress(message: str) -> None:
            now = time.perf_counter()
            err.print(f"[dim]{now - start:6.1f}s[/dim]  {plain(message)}", highlight=False)
            last[0] = now
            status.update(message)

        result = export(name, format, output, weights=weights, pretrained=pretrained, onnx=onnx_options,
                        tensorrt=trt_options, triton=triton_options, force=force, progress=progress)
    for warning in result.warnings:
        err.print(f"[yellow]Warning:[/yellow] {plain(warning)}", highlight=False)
    _summary(result, time.perf_counter() - start)


def _summary(result, seconds: float) -> None:
    console = Console(width=160)
    files = Table(title=f"{result.model} -> {result.format}: {result.output}  ({seconds:.1f}s)")
    files.add_column("artifact")
    files.add_column("kind")
    files.add_column("size", justify="right")
    for artifact in result.artifacts:
        files.add_row(plain(artifact.path), artifact.kind, _size(artifact.bytes))
    console.print(files)
    parity = Table(title="verification against PyTorch")
    for column in ("artifact", "runtime", "inputs", "batch sizes", "max |diff|/range", "min cosine", "tolerance",
                   "top-1 agree", "result"):
        parity.add_column(column)
    for report in result.verifications:
        inputs = "images" if any(c.inputs == "images" for c in report.checks) else "noise"
        t = report.tolerance
        parity.add_row(report.artifact, report.runtime, inputs, ", ".join(map(str, report.batch_sizes)),
                       f"{report.max_rel_diff:.1e}", f"{report.min_cosine:.5f}",
                       f"{t.name}: <= {t.max_rel_diff:g}, >= {t.min_cosine:g}",
                       f"{min(c.top1_agreement for c in report.checks):.1%}", "PASS" if report.passed else "FAIL")
    console.print(parity)
    if result.accuracy:
        gate = Table(title="accuracy gate (labelled images)")
        for column in ("data", "n", "PyTorch top-1", "artifact top-1", "delta (points)", "allowed drop",
                       "top-1 agreement", "result"):
            gate.add_column(column)
        for report in result.accuracy:
            gate.add_row(plain(report.data.get("source")), str(report.n), f"{report.reference_top1:.2%}",
                         f"{report.artifact_top1:.2%}", f"{report.delta_top1:+.2f}", f"{report.max_accuracy_drop:g}",
                         f"{report.top1_agreement:.1%}", "PASS" if report.passed else "FAIL")
        console.print(gate)
    if result.timings:
        console.print("timings: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in result.timings.items()))
    console.print("[bold]run it:[/bold]")
    console.print(result.run_hint, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
