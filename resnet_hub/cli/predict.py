"""``resnet-hub predict``: classify images with a variant, as tables for people or JSON for scripts."""

from __future__ import annotations

import json
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
    name: str = typer.Argument(..., help="Variant, optionally with a pretrained tag: myresnet50.tv_in1k"),
    images: List[Path] = typer.Argument(..., help="Image files and/or folders of images."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local safetensors weights file."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Download the default (or NAME.tag) pretrained weights."),
    topk: int = typer.Option(5, "--topk", min=1, help="How many classes to show per image."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    optimize: bool = typer.Option(True, "--optimize/--no-optimize",
                                  help="Fold BatchNorm and use channels-last (same results, faster)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of tables."),
) -> None:
    """Classify images; unreadable files are skipped with a warning (exit 1 only if none could be read)."""
    from ..predict import build_predictor, expand_image_paths  # torch only when the command runs

    err = Console(stderr=True)
    if weights is not None and pretrained:
        raise typer.BadParameter("pass either --weights FILE or --pretrained, not both")
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
