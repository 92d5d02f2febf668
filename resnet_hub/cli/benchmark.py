"""``resnet-hub benchmark``: latency and throughput per backend, as a ratio to timm's eager model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from .text import plain
from rich.table import Table

if TYPE_CHECKING:
    from ..tasks.benchmark import BenchmarkReport


def benchmark_command(
    name: str = typer.Argument(..., help="Variant to measure, e.g. myresnet50."),
    backends: str = typer.Option(
        "torch,torch-optimized,onnxruntime", "--backends",
        help="Comma-separated: torch, torch-optimized, onnxruntime, onnxruntime-fp16, onnxruntime-int8, openvino, "
             "openvino-int8, tensorrt (timm's eager baseline always runs).",
    ),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local safetensors weights to measure."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Download the default (or NAME.tag) pretrained weights."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    img_size: int = typer.Option(224, "--img-size", min=8),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    warmup: int = typer.Option(3, "--warmup", min=0, help="Untimed calls per backend before timing."),
    iters: Optional[int] = typer.Option(None, "--iters", min=1, help="Timed rounds (overrides --min-time)."),
    min_time: float = typer.Option(5.0, "--min-time", min=0.0,
                                   help="Without --iters: time each backend for at least this many seconds."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="Intra-op threads for torch and ONNX Runtime "
                                               "(default: physical cores)."),
    compile: bool = typer.Option(False, "--compile", help="Add torch.compile to torch-optimized (slow to start)."),
    peak_gflops: Optional[float] = typer.Option(
        None, "--peak-gflops", min=0.001,
        help="fp32 GFLOP/s to compare against instead of the measured fp32 GEMM ceiling (int8 stays measured)."),
    calib_data: Optional[str] = typer.Option(
        None, "--calib-data", help="int8 backends' calibration images: a folder, or 'digits' (the default when "
                                   "scikit-learn is installed)."),
    calib_limit: int = typer.Option(32, "--calib-limit", min=1,
                                    help="int8 backends: calibrate on at most this many images."),
    eval_data: Optional[str] = typer.Option(
        None, "--eval-data", help="Labelled images (folder or 'digits') for the accuracy gate behind the "
                                  "recommendation (default: parity with the eager model on the benchmark batch)."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", min=1, help="Gate on at most this many images."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of a table."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw img/s per backend against the measured "
                                                             "ceilings into this .png (the plots extra)."),
) -> None:
    """Measure inference speed on several backends in one run, against timm's eager model of the same architecture."""
    from ..tasks.benchmark import run_benchmark  # torch & co. only when the command runs (`--help` stays instant)

    err = Console(stderr=True)
    if plot is not None:
        from ..tasks.plots import check_plot_path

        check_plot_path(plot, purpose="benchmark --plot")  # before minutes of timing, not after
    start = time.perf_counter()
    last_round = [0.0]
    with err.status("benchmarking") as status:
        def progress(message: str) -> None:
            # One line per step on stderr (also when piped or logged); timed rounds at most one line per 5 s.
            now = time.perf_counter()
            status.update(f"benchmarking {name}: {message}")
            if message.startswith("round "):
                if now - last_round[0] < 5.0:
                    return
                last_round[0] = now
            err.print(f"[dim]{now - start:6.1f}s[/dim]  {plain(message)}", highlight=False)

        report = run_benchmark(
            name, backends, batch_size=batch_size, img_size=img_size, device=device, warmup=warmup, iters=iters,
            min_time_s=min_time, threads=threads, compile=compile, peak_gflops=peak_gflops,
            weights=weights, pretrained=pretrained, calib_data=calib_data, calib_limit=calib_limit,
            eval_data=eval_data, eval_limit=eval_limit, progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if plot is not None and any(r.available for r in report.results):
        from ..tasks.plots import benchmark_rates

        err.print(f"wrote {plain(str(benchmark_rates(report, plot).path))}", highlight=False)
    for r in report.results:
        if not r.available:
            err.print(f"[yellow]{r.backend} unavailable:[/yellow] {plain(r.reason)}", highlight=False)
    if report.all_requested_unavailable:
        err.print("[red]Error:[/red] none of the requested backends could run", highlight=False)
        raise typer.Exit(1)
    if not as_json:
        Console().print(f"[bold]{plain(report.recommendation)}[/bold]", highlight=False)


def _print_report(report: BenchmarkReport) -> None:
    console = Console()
    table = Table(
        title=f"{report.model}: batch {report.batch_size}, {report.img_size}px, {report.device}, "
              f"{report.threads} threads, {report.iters} timed rounds",
        title_justify="left",
    )
    for column in ("backend", "median ms", "p90 ms", "img/s", "vs baseline", "GOP/s", "% of ceiling", "max |diff|",
                   "gate", "setup s"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for r in report.results:
        if not r.available:
            table.add_row(r.backend, "-", "-", "-", "unavailable", "-", "-", "-", "-", "-")
            continue
        table.add_row(
            r.backend + (" (baseline)" if r.is_baseline else ""),
            f"{r.median_ms:.1f}", f"{r.p90_ms:.1f}", f"{r.throughput:.2f}", f"{r.speedup:.2f}x",
            f"{r.achieved_gflops:.1f}",
            f"{100 * r.ceiling_fraction:.0f}% {r.arithmetic}" if r.ceiling_fraction is not None else "-",
            f"{r.max_abs_diff:.1e}" if r.max_abs_diff is not None else "-",
            _gate_cell(r), f"{r.setup_s:.1f}",
        )
    console.print(table)
    console.print(f"CPU: {plain(report.environment.get('cpu', '?'))}; "
                  f"ISA: {plain(report.environment.get('isa', '?'))}"
                  f"; {report.threads} threads", highlight=False)
    console.print(f"baseline: {plain(report.baseline_note)}", highlight=False)
    for r in report.results:
        if r.available:
            console.print(f"  {r.backend}: {plain(r.description)}", highlight=False)
            if r.gate:
                console.print(f"    gate ({plain(report.gate_kind)}): {plain(r.gate)}", highlight=False)
    console.print(f"{report.gflops_per_image:.2f} GOP per image (2 x MACs of convs and classifier, any precision).",
                  highlight=False)
    for ceiling in report.ceilings.values():
        console.print(plain(ceiling.describe()), highlight=False)
    console.print(f"load average {report.environment.get('load_average', '?')} at start, "
                  f"{report.environment.get('load_average_end', '?')} at the end", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {plain(note)}", highlight=False)


def _gate_cell(r) -> str:
    if r.gate_passed is None:
        return "-"
    mark = "pass" if r.gate_passed else "FAIL"
    return f"{mark} ({r.accuracy_delta:+.2f} pt)" if r.accuracy_delta is not None else mark


def register(app: typer.Typer) -> None:
    app.command("benchmark")(benchmark_command)
