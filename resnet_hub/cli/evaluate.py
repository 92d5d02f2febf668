"""``resnet-hub evaluate``: top-1 / top-5 / per-class accuracy of weights or an export on labelled images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def evaluate_command(
    target: str = typer.Argument(..., help="A .safetensors file, a model name (with --weights/--pretrained) or "
                                           "an export directory (ONNX; TensorRT where CUDA exists)."),
    data: str = typer.Option(..., "--data", help="Image folder (SRC/val when present) or 'digits'."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Safetensors weights for a model name."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Download the default (or NAME.tag) pretrained weights."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate at most this many images."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (PyTorch targets)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (top1, top5, n, per_class, ...)."),
) -> None:
    """Evaluate a model or an exported artifact on labelled images, with the preprocessing its weights expect."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..evaluate import evaluate

    err = Console(stderr=True)
    resolved: object = target
    if Path(target).is_dir():
        from ..export.directory import export_target

        if weights is not None or pretrained:
            raise typer.BadParameter("an export directory carries its own weights; drop --weights/--pretrained")
        resolved = export_target(target, device)
    with err.status(f"evaluating {target} on {data}"):
        result = evaluate(resolved, data, weights=weights, pretrained=pretrained, device=device,
                          batch_size=batch_size, limit=limit)
    for skipped in result.skipped:
        err.print(f"[yellow]Warning:[/yellow] skipped {escape(skipped.path)}: {escape(skipped.reason)}",
                  highlight=False)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console = Console()
    console.print(f"{escape(result.target)} on {escape(str(result.data['source']))} ({escape(result.data['split'])}),"
                  f" {result.runtime}", highlight=False)
    console.print(f"top-1 [bold]{result.top1:.2%}[/bold]   top-5 {result.top5:.2%}   n {result.n}", highlight=False)
    table = Table(title="per class")
    for column in ("class", "n", "top-1"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in result.per_class:
        table.add_row(escape(row.name), str(row.n), f"{row.top1:.1%}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
