"""``resnet-hub convert``: foreign checkpoints (torchvision, timm, Keras, transformers) -> our safetensors."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


class SourceFormat(str, Enum):
    torchvision = "torchvision"
    timm = "timm"
    keras = "keras"
    transformers = "transformers"


def convert_command(
    source: Path = typer.Argument(..., help="Checkpoint: .pth/.bin/.safetensors, Keras .h5/.weights.h5, or a "
                                            "transformers model folder."),
    source_format: SourceFormat = typer.Option(..., "--from", help="Ecosystem the checkpoint comes from."),
    model: str = typer.Option(..., "--model", "-m", help="Target variant, e.g. myresnet50 or myresnet50_v1."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .safetensors file."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Convert a checkpoint into a variant's layout; pickles are read with weights_only (no code runs)."""
    from ..weights.converters.dispatch import convert_checkpoint

    console = Console(stderr=True)
    with console.status(f"Converting {source.name} ({source_format.value}) -> {model}"):
        report = convert_checkpoint(source, source_format.value, model, output, overwrite=force)
    p = report.preprocessing
    table = Table(show_header=False, box=None)
    for key, value in (
        ("output", str(report.output)),
        ("size", f"{report.output.stat().st_size / 1e6:.1f} MB, {report.num_tensors} tensors"),
        ("architecture", f"{report.architecture} ({report.num_classes} classes)"),
        ("preprocessing", f"{p.style}: mean {tuple(round(m, 4) for m in p.mean)} "
                          f"std {tuple(round(s, 4) for s in p.std)}"),
        ("source sha256", report.source_sha256),
        ("notes", "; ".join(report.notes) or "-"),
    ):
        table.add_row(f"[bold]{key}[/bold]", value)
    Console().print(table)
    Console().print(f"Load it with: resnet_hub.create_model('{report.architecture}', "
                    f"num_classes={report.num_classes}, weights='{report.output}')")
    typer.echo(f"sha256 {report.sha256}")


def register(app: typer.Typer) -> None:
    app.command("convert")(convert_command)
