"""``resnet-hub evaluate``: top-1 / top-5 / per-class accuracy of weights or an export on labelled images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

ENGINES = ("local", "ray")
PIPED_STEPS = 20  # without a terminal: one progress line per 5 % of the images (and one at the end)


def evaluate_command(
    target: str = typer.Argument(..., help="A .safetensors file, a model name (with --weights/--pretrained) or "
                                           "an export directory (ONNX; TensorRT where CUDA exists)."),
    data: str = typer.Option(..., "--data", help="Image folder (SRC/val when present, also a folder holding only "
                                                 "val/) or 'digits'."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Safetensors weights for a model name."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Download the default (or NAME.tag) pretrained weights."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate at most this many images."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (PyTorch targets)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0,
                                          help="Processes decoding images (default: from the CPU count; 0: none)."),
    engine: str = typer.Option("local", "--engine", help="local, or ray (Ray Data, like predict --engine ray)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (--engine ray); default: "
                                                                  "the running cluster or a local Ray."),
    num_workers: int = typer.Option(1, "--num-workers", min=1, help="Ray actors holding the model (--engine ray)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (top1, top5, n, per_class, ...)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the confusion matrix and per-class "
                                                             "accuracy into this .png (the plots extra)."),
) -> None:
    """Evaluate a model or an exported artifact on labelled images, with the preprocessing its weights expect."""
    from rich.console import Console
    from rich.table import Table

    from ..devices import resolve_device
    from ..tasks.evaluate import Target, evaluate, resolve_target
    from .text import plain

    if engine not in ENGINES:
        raise typer.BadParameter(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "local" and (address is not None or num_workers != 1):
        raise typer.BadParameter("--address and --num-workers apply to --engine ray")
    if engine == "ray" and workers is not None:
        raise typer.BadParameter("--workers applies to --engine local (Ray Data schedules its own decoding tasks)")
    err = Console(stderr=True)
    device = str(resolve_device(device))  # one clear line for 'tpu' or cuda without a GPU, before any work
    if workers is not None:
        from ..tasks.input_pipeline import workers_warning

        warning = workers_warning(workers)
        if warning:
            err.print(f"[yellow]Warning:[/yellow] {plain(warning)}", highlight=False)
    resolved: Target
    if plot is not None:
        from ..tasks.plots import check_plot_path

        check_plot_path(plot, purpose="evaluate --plot")  # before the work: the extra is there, the path is free
    if Path(target).is_dir():
        from ..export.directory import export_target

        if weights is not None or pretrained:
            raise typer.BadParameter("an export directory carries its own weights; drop --weights/--pretrained")
        resolved = export_target(target, device)
    else:
        resolved = resolve_target(target, weights=weights, pretrained=pretrained, device=device)
    with _progress_display(err, f"evaluating {target} on {data}") as on_progress:
        if engine == "ray":
            import logging
            import os

            from ..tasks.batch_evaluate import evaluate_on_ray, ray_model_for

            os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")  # Ray Data's per-dataset INFO lines
            logging.getLogger("ray").setLevel(logging.WARNING)
            ray_model = ray_model_for(target, weights=weights, pretrained=pretrained, device=device)
            result = evaluate_on_ray(resolved, data, ray_model=ray_model, batch_size=batch_size, limit=limit,
                                     num_workers=num_workers, address=address, on_progress=on_progress)
        else:
            result = evaluate(resolved, data, batch_size=batch_size, limit=limit, workers=workers,
                              on_progress=on_progress)
    for skipped in result.skipped:
        err.print(f"[yellow]Warning:[/yellow] skipped {plain(skipped.path)}: {plain(skipped.reason)}",
                  highlight=False)
    if plot is not None:
        from ..tasks.plots import evaluation_picture

        err.print(f"wrote {plain(str(evaluation_picture(result, plot).path))}", highlight=False)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console = Console()
    console.print(f"{plain(result.target)} on {plain(str(result.data['source']))} ({plain(result.data['split'])}),"
                  f" {result.runtime}", highlight=False)
    console.print(f"top-1 [bold]{result.top1:.2%}[/bold]   top-5 {result.top5:.2%}   n {result.n}", highlight=False)
    table = Table(title="per class")
    for column in ("class", "n", "top-1"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in result.per_class:
        table.add_row(plain(row.name), str(row.n), f"{row.top1:.1%}")
    console.print(table)


class _progress_display:
    """A live bar (images done / total, img/s, ETA) on a terminal; without one, a plain line per step of
    ~5 % so logs of long runs show where they stand."""

    def __init__(self, err, title: str) -> None:
        self.err = err
        self.title = title
        self.bar: Progress | None = None
        self.next_line = 0

    def __enter__(self) -> Callable:
        if self.err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self.err,
                                transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task(self.title, total=None, rate="")
        return self.update

    def update(self, progress) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=progress.done, total=progress.total,
                            rate=f"{progress.rate:.1f} img/s")
            return
        if progress.done < self.next_line and progress.done < progress.total:
            return
        self.next_line = progress.done + max(1, progress.total // PIPED_STEPS)
        eta = progress.eta_s
        self.err.print(f"evaluated {progress.done}/{progress.total} images, {progress.rate:.1f} img/s, "
                       f"ETA {_duration(eta) if eta is not None else '?'}"
                       + (f", {progress.skipped} skipped" if progress.skipped else ""), highlight=False,
                       soft_wrap=True)

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc_info)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
