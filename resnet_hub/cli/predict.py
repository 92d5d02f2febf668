"""``resnet-hub predict``: classify images with a variant, as tables for people or JSON for scripts; with
``--engine ray``, on Ray Data workers into a .jsonl / .parquet file (``resnet_hub.batch_predict``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from ..predict import PredictionRun


def predict_command(
    name: str = typer.Argument(..., help="Variant, optionally with a pretrained tag: myresnet50.tv_in1k "
                                         "(--engine ray: or an ONNX / TensorRT export directory)."),
    images: List[str] = typer.Argument(..., help="Image files and/or folders of images (--engine ray: also "
                                                 "s3://, gs://, file:// URIs)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local safetensors weights file."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Download the default (or NAME.tag) pretrained weights."),
    topk: int = typer.Option(5, "--topk", min=1, help="How many classes to show per image."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize",
                                  help="Fold BatchNorm and use channels-last (same results, faster)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of tables."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data workers; "
                                                          "needs --output and `pip install 'resnet-hub[ray]'`)."),
    address: Optional[str] = typer.Option(None, "--address", help="--engine ray: a Ray cluster to join "
                                                                    "(default: start a local Ray)."),
    num_workers: int = typer.Option(1, "--num-workers", min=1, help="--engine ray: model workers (actors)."),
    output: Optional[Path] = typer.Option(None, "--output", help="--engine ray: results file, .jsonl or .parquet."),
    force: bool = typer.Option(False, "--force", help="--engine ray: replace an existing --output file."),
) -> None:
    """Classify images; unreadable files are skipped with a warning (exit 1 only if none could be read)."""
    from ..predict import build_predictor, expand_image_paths  # torch only when the command runs

    err = Console(stderr=True)
    if weights is not None and pretrained:
        raise typer.BadParameter("pass either --weights FILE or --pretrained, not both")
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"--engine must be 'local' or 'ray', not '{engine}'")
    if engine == "ray":
        if as_json:
            raise typer.BadParameter("--json prints local results; with --engine ray the results go to --output")
        if output is None:
            raise typer.BadParameter("--engine ray writes its results to a file: pass --output FILE.jsonl|.parquet")
        _predict_on_ray(err, name, images, weights=weights, pretrained=pretrained, topk=topk, batch_size=batch_size,
                        device=device, optimize=optimize, address=address, num_workers=num_workers, output=output,
                        force=force)
        return
    ray_only = [flag for flag, given in (("--address", address is not None), ("--num-workers", num_workers != 1),
                                         ("--output", output is not None), ("--force", force)) if given]
    if ray_only:
        raise typer.BadParameter(f"{', '.join(ray_only)} only apply with --engine ray")
    if weights is None and not pretrained:
        err.print("[yellow]Warning:[/yellow] neither --weights nor --pretrained given: using random weights")
    predictor = build_predictor(name, weights=weights, pretrained=pretrained, optimize=optimize, device=device)
    files, _ = expand_image_paths(images)
    with Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not files) as progress:
        task = progress.add_task("predict", total=len(files))
        run = predictor.predict_paths(images, k=topk, batch_size=batch_size,
                                      on_progress=lambda n: progress.advance(task, n))
    for skipped in run.skipped:
        err.print(f"[yellow]Warning:[/yellow] skipped {escape(skipped.path)}: {escape(skipped.reason)}", highlight=False)
    if as_json:
        typer.echo(json.dumps(_as_dict(name, weights, predictor.data_config, run), indent=2))
    else:
        _print_tables(run)
    if not run.predictions:
        err.print("[red]Error:[/red] no image could be predicted", highlight=False)
        raise typer.Exit(1)


def _predict_on_ray(err: Console, name: str, images: List[str], *, weights: Optional[Path], pretrained: bool,
                    topk: int, batch_size: int, device: str, optimize: bool, address: Optional[str],
                    num_workers: int, output: Path, force: bool) -> None:
    import logging

    from ..batch_predict import TorchBatchModel, check_output, import_ray, predict_with_ray

    check_output(output, force)  # before Ray starts: a refused output costs nothing
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")  # Ray Data's per-dataset INFO lines (read at import)
    import_ray()
    logging.getLogger("ray").setLevel(logging.WARNING)
    if Path(name).is_dir():
        from ..export.batch_model import ExportBatchModel

        if weights is not None or pretrained:
            raise typer.BadParameter(f"{name} is an export directory: it carries its own weights")
        model = ExportBatchModel(name)
    else:
        if weights is None and not pretrained:
            err.print("[yellow]Warning:[/yellow] neither --weights nor --pretrained given: using random weights")
        model = TorchBatchModel(name, weights=str(weights) if weights else None, pretrained=pretrained,
                                optimize=optimize, device=device)
    with Progress(TextColumn("predicting on Ray"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("predict", total=None)
        result = predict_with_ray(model, images, output, k=topk, batch_size=batch_size, num_workers=num_workers,
                                  address=address, overwrite=force,
                                  on_start=lambda total: progress.update(task, total=total),
                                  on_progress=lambda n: progress.advance(task, n))
    err.print(f"Wrote {escape(str(result.output))}: {result.predicted} predicted, {result.skipped} skipped, "
              f"{result.num_workers} worker(s), {result.seconds:.1f} s", highlight=False)
    if result.skipped:
        err.print(f"[yellow]Warning:[/yellow] {result.skipped} file(s) skipped; their rows in the output say why",
                  highlight=False)
    if not result.predicted:
        err.print("[red]Error:[/red] no image could be predicted", highlight=False)
        raise typer.Exit(1)


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
        console.print(escape(prediction.path), style="bold", soft_wrap=True, highlight=False)
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column("class", justify="right")
        table.add_column("probability", justify="right")
        for rank, (index, label, prob) in enumerate(
            zip(prediction.indices, prediction.labels, prediction.probabilities), start=1
        ):
            table.add_row(str(rank), escape(label), str(index), f"{prob:.4f}")
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
