"""``resnet-hub finetune``: train a variant on an image folder or the built-in ``digits``, write safetensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def finetune_command(
    name: str = typer.Argument(..., help="Variant to fine-tune, optionally with a pretrained tag."),
    data: str = typer.Option(..., "--data", help="Image folder (one sub-folder per class; train/ and val/ used "
                                                  "when present) or 'digits' (built-in, offline)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the fine-tuned .safetensors."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Start from these safetensors weights."),
    pretrained: bool = typer.Option(False, "--pretrained/--no-pretrained",
                                    help="Start from the default (or NAME.tag) pretrained weights."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=32,
                                           help="Square training/inference size (default: the weights' size)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    lr: float = typer.Option(0.05, "--lr", help="Peak learning rate (cosine schedule, 1 warm-up epoch)."),
    opt: str = typer.Option("sgd", "--opt", help="sgd (momentum 0.9) | adamw"),
    val_split: float = typer.Option(0.2, "--val-split", help="Hold-out fraction when SRC has no val/ folder."),
    seed: int = typer.Option(0, "--seed", help="Seeds shuffling, crops and init: same seed, same weights."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (mixed precision on cuda)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print the training record as JSON on stdout."),
) -> None:
    """Fine-tune NAME on labelled images; the output records classes, preprocessing and validation accuracy."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..train import FinetuneOptions, finetune

    if weights is not None and pretrained:
        raise typer.BadParameter("pass either --weights FILE or --pretrained, not both")
    err = Console(stderr=True)
    curves = output.with_suffix(".png")  # the training curves, drawn beside the weights (the plots extra)
    if curves.exists() and not force:
        raise typer.BadParameter(f"{curves} (where the training curves go) already exists; pass --force to replace it",
                                 param_hint="--output")
    options = FinetuneOptions(epochs=epochs, img_size=img_size, batch_size=batch_size, lr=lr, opt=opt,
                              val_split=val_split, seed=seed, device=device)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                  TimeElapsedColumn(), console=err) as progress:
        tasks: dict[int, int] = {}

        def on_step(update) -> None:
            if update.epoch not in tasks:
                tasks[update.epoch] = progress.add_task(f"epoch {update.epoch}/{update.epochs}", total=update.steps,
                                                        stats="")
            progress.update(tasks[update.epoch], completed=update.step,
                            stats=f"loss {update.loss:.3f}  train top-1 {update.top1:.1%}")

        def on_epoch(record) -> None:
            task = tasks.get(record.epoch)
            if task is not None:
                progress.update(task, stats=f"loss {record.train_loss:.3f}  train top-1 {record.train_top1:.1%}  "
                                            f"val top-1 {record.val_top1:.1%}  top-5 {record.val_top5:.1%}")

        result = finetune(name, data, output, weights=weights, pretrained=pretrained, options=options,
                          overwrite=force, on_step=on_step, on_epoch=on_epoch)
    for path, reason in sorted(result.skipped.items()):
        err.print(f"[yellow]Warning:[/yellow] skipped {escape(path)}: {escape(reason)}", highlight=False)
    if result.ignored:
        err.print(f"[yellow]Warning:[/yellow] {len(result.ignored)} non-image file(s) ignored, e.g. "
                  f"{escape(result.ignored[0])}", highlight=False)
    from ..errors import ResNetHubError
    from ..plots import training_curves

    try:
        training_curves(result.record["history"], curves, title=f"{result.architecture} on {data}", overwrite=force)
        err.print(f"training curves: {escape(str(curves))}", highlight=False)
    except ResNetHubError as exc:  # the weights are written: a missing plots extra only costs the picture
        err.print(f"[yellow]Note:[/yellow] no training curves drawn: {escape(str(exc))}", highlight=False)
    if as_json:
        typer.echo(json.dumps(dict(output=str(result.output), sha256=result.sha256, architecture=result.architecture,
                                   classes=result.classes, **result.record), indent=2))
        return
    typer.echo(f"wrote {result.output} ({result.architecture}, {len(result.classes)} classes, sha256 "
               f"{result.sha256[:12]}...)")
    typer.echo(f"val top-1 {result.val_top1:.2%}, top-5 {result.val_top5:.2%} after {len(result.epochs)} epochs")
    typer.echo(f"next: resnet-hub evaluate {result.output} --data {data}")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune_command)
