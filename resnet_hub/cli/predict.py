"""``resnet-hub predict``: classify images with a variant, as tables for people or JSON for scripts; with
``--engine ray``, on Ray Data workers into a .jsonl / .parquet file (``resnet_hub.tasks.batch_predict``)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .progress import progress_display
from .text import plain

if TYPE_CHECKING:
    from ..tasks.batch_predict import TorchBatchModel
    from ..export.batch_model import ExportBatchModel
    from ..tasks.predict import PredictionRun


def predict_command(
    name: str = typer.Argument(..., help="What to run: a variant, optionally with a pretrained tag "
                                         "(myresnet50.tv_in1k) or hf-hub:ORG/NAME; a .safetensors weights file; "
                                         "or an export directory (ONNX; TensorRT where CUDA exists)."),
    images: List[str] = typer.Argument(..., help="Image files and/or folders of images (--engine ray: also "
                                                 "s3://, gs://, file:// URIs)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local safetensors weights for a variant NAME."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Download the default (or NAME.tag) pretrained weights."),
    topk: int = typer.Option(5, "--topk", min=1, help="How many classes to show per image."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize",
                                  help="Fold BatchNorm and use channels-last (same results, faster)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of tables."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data workers; "
                                                          "needs --output and the ray extra: "
                                                          "`uv sync --extra ray` in a clone)."),
    address: Optional[str] = typer.Option(None, "--address", help="--engine ray: a Ray cluster to join "
                                                                    "(default: start a local Ray)."),
    num_workers: int = typer.Option(1, "--num-workers", min=1, help="--engine ray: model workers (actors)."),
    output: Optional[Path] = typer.Option(None, "--output", help="--engine ray: results file, .jsonl or .parquet."),
    force: bool = typer.Option(False, "--force", help="--engine ray: replace an existing --output file."),
    verbose: bool = typer.Option(False, "--verbose", help="--engine ray: show Ray's own log lines."),
) -> None:
    """Classify images; unreadable files are skipped with a warning (exit 1 only if none could be read)."""
    from ..errors import WeightsChoiceError

    err = Console(stderr=True)
    WeightsChoiceError.check(weights, pretrained)
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"--engine must be 'local' or 'ray', not '{engine}'")
    export_dir = Path(name).is_dir()
    if export_dir and (weights is not None or pretrained):
        raise typer.BadParameter(f"{name} is an export directory: it carries its own weights; "
                                 "drop --weights/--pretrained")
    if engine == "ray":
        if as_json:
            raise typer.BadParameter("--json prints local results; with --engine ray the results go to --output")
        if output is None:
            raise typer.BadParameter("--engine ray writes its results to a file: pass --output FILE.jsonl|.parquet")
        _predict_on_ray(err, name, images, weights=weights, pretrained=pretrained, topk=topk, batch_size=batch_size,
                        device=device, optimize=optimize, address=address, num_workers=num_workers, output=output,
                        force=force, verbose=verbose)
        return
    ray_only = [flag for flag, given in (("--address", address is not None), ("--num-workers", num_workers != 1),
                                         ("--output", output is not None), ("--force", force),
                                         ("--verbose", verbose)) if given]
    if ray_only:
        raise typer.BadParameter(f"{', '.join(ray_only)} only apply with --engine ray")
    from ..tasks.predict import build_predictor, expand_image_paths, is_weights_file  # torch only when the command runs

    if export_dir:
        predictor = _export_predictor(name, device)
    else:
        if weights is None and not pretrained and not is_weights_file(name):
            err.print("[yellow]Warning:[/yellow] neither --weights nor --pretrained given: using random weights")
        predictor = build_predictor(name, weights=weights, pretrained=pretrained, optimize=optimize, device=device)
    files, _ = expand_image_paths(images)
    with progress_display(err, TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          transient=True, disable=not files) as progress:
        task = progress.add_task("predicting", total=len(files))
        run = predictor.predict_paths(images, k=topk, batch_size=batch_size,
                                      on_progress=lambda n: progress.advance(task, n))
    for skipped in run.skipped:
        err.print(f"[yellow]Warning:[/yellow] skipped {plain(skipped.path)}: {plain(skipped.reason)}", highlight=False)
    if as_json:
        typer.echo(json.dumps(_as_dict(name, weights, predictor.data_config, run), indent=2))
    else:
        _print_tables(run)
    if not run.predictions:
        err.print("[red]Error:[/red] no image could be predicted", highlight=False)
        raise typer.Exit(1)


def _export_predictor(directory: str, device: str):
    """An export directory's runner (ONNX Runtime, or TensorRT where CUDA exists) with its manifest's
    preprocessing and class names, opened the way ``evaluate DIR`` opens it. The one place predict reads an
    export directory."""
    from ..export.directory import export_target  # re-hashes every file before anything runs
    from ..tasks.predict import predictor_for_target

    return predictor_for_target(export_target(directory, device))


# Environment that keeps a Ray started by this process quiet: Ray Data's per-dataset INFO lines and progress-bar
# notice, the C++ core workers' log lines (an error-level line on every clean shutdown), usage-stats notices.
_QUIET_RAY = {"RAY_DATA_LOG_LEVEL": "ERROR", "RAY_USAGE_STATS_ENABLED": "0"}


def _predict_on_ray(err: Console, name: str, images: List[str], *, weights: Optional[Path], pretrained: bool,
                    topk: int, batch_size: int, device: str, optimize: bool, address: Optional[str],
                    num_workers: int, output: Path, force: bool, verbose: bool) -> None:
    import logging

    from ..tasks.batch_predict import TorchBatchModel, check_output, import_ray, predict_with_ray

    check_output(output, force)  # before Ray starts: a refused output costs nothing
    if not verbose:  # Ray's own lines are for Ray's developers; --verbose shows them (all read at import / start)
        for variable, value in _QUIET_RAY.items():
            os.environ.setdefault(variable, value)
    import_ray()
    logging.getLogger("ray").setLevel(logging.INFO if verbose else logging.ERROR)
    if Path(name).is_dir():
        from ..export.batch_model import ExportBatchModel

        if weights is not None or pretrained:
            raise typer.BadParameter(f"{name} is an export directory: it carries its own weights")
        model: ExportBatchModel | TorchBatchModel = ExportBatchModel(name)
    else:
        from ..tasks.predict import is_weights_file

        if weights is None and not pretrained and not is_weights_file(name):
            err.print("[yellow]Warning:[/yellow] neither --weights nor --pretrained given: using random weights")
        model = TorchBatchModel(name, weights=str(weights) if weights else None, pretrained=pretrained,
                                optimize=optimize, device=device)
    with contextlib.ExitStack() as stack:
        shown = err if verbose else stack.enter_context(_native_stderr_to_log(err))
        with progress_display(shown, TextColumn("predicting on Ray"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), transient=True) as progress:
            task = progress.add_task("predicting on Ray", total=None)
            result = predict_with_ray(model, images, output, k=topk, batch_size=batch_size,
                                      num_workers=num_workers, address=address, overwrite=force, verbose=verbose,
                                      on_start=lambda total: progress.update(task, total=total),
                                      on_progress=lambda n: progress.advance(task, n))
    err.print(f"Wrote {plain(str(result.output))}: {result.predicted} predicted, {result.skipped} skipped, "
              f"{result.num_workers} worker(s), {result.seconds:.1f} s", highlight=False)
    if result.skipped:
        err.print(f"[yellow]Warning:[/yellow] {result.skipped} file(s) skipped; their rows in the output say why",
                  highlight=False)
    if not result.predicted:
        err.print("[red]Error:[/red] no image could be predicted", highlight=False)
        raise typer.Exit(1)


@contextlib.contextmanager
def _native_stderr_to_log(err: Console) -> Iterator[Console]:
    """Send what Ray's C++ core writes to this process's stderr (an error-level line on every actor pool,
    log-level notices) to a log file while the run lasts; yields a console on the real stderr for our own lines.

    The log is deleted after a clean run and named (one line) after a failed one, so nothing is lost for a
    bug report; ``--verbose`` skips this and shows Ray's lines as they come."""
    sys.stderr.flush()
    terminal = os.dup(2)
    log = tempfile.NamedTemporaryFile(prefix="resnet-hub-ray-", suffix=".log", delete=False)
    os.dup2(log.fileno(), 2)
    ok = False
    real = os.fdopen(os.dup(terminal), "w", encoding="utf-8", errors="replace")
    try:
        yield Console(file=real, force_terminal=err.is_terminal, width=err.width)
        ok = True
    finally:
        real.close()
        sys.stderr.flush()
        os.dup2(terminal, 2)
        os.close(terminal)
        log.close()
        if ok:
            os.unlink(log.name)
        else:
            err.print(f"Ray's own log lines of this run are in {plain(log.name)} (--verbose shows them as they "
                      "come)", highlight=False)


def _as_dict(name: str, weights: Optional[Path], data_config: dict, run: PredictionRun) -> dict:
    return dict(
        model=name,
        weights=str(weights) if weights else None,
        preprocessing={k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()},
        predictions=[
            dict(path=p.path, topk=[dict(index=i, label=lbl, probability=prob)
                                    for i, lbl, prob in zip(p.indices, p.labels, p.probabilities)])
            for p in run.predictions
        ],
        skipped=[dict(path=s.path, reason=s.reason) for s in run.skipped],
    )


def _print_tables(run: PredictionRun) -> None:
    console = Console()
    for prediction in run.predictions:
        console.print(plain(prediction.path), style="bold", soft_wrap=True, highlight=False)
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column("class", justify="right")
        table.add_column("probability", justify="right")
        for rank, (index, label, prob) in enumerate(
            zip(prediction.indices, prediction.labels, prediction.probabilities), start=1
        ):
            table.add_row(str(rank), plain(label), str(index), f"{prob:.4f}")
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
