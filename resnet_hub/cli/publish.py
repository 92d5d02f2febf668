"""``resnet-hub publish``: write a Hub-ready folder (safetensors + timm config + model card) and upload it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from .text import plain


def _metrics(values: list[str]) -> dict[str, float]:
    parsed = {}
    for item in values:
        key, sep, value = item.partition("=")
        try:
            parsed[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise typer.BadParameter(f"'{item}' is not NAME=VALUE (e.g. top1=80.4)", param_hint="--metric")
    return parsed


def publish_command(
    name: str = typer.Argument(..., help="Variant, optionally with the table tag the weights are: myresnet50.tv_in1k"),
    weights: Path = typer.Option(..., "--weights", "-w", help="Safetensors file (from training or `convert`)."),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub repo, ORG/NAME."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to (created if missing)."),
    dry_run: Optional[Path] = typer.Option(None, "--dry-run", help="Write the folder to this directory; no upload."),
    license: Optional[str] = typer.Option(None, "--license", help="License id for the card, e.g. apache-2.0."),
    dataset: list[str] = typer.Option([], "--dataset", help="Training dataset id (repeatable)."),
    metric: list[str] = typer.Option([], "--metric", help="NAME=VALUE for the card (repeatable), e.g. top1=80.4."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Text file with one class name per line."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Labelled images (folder or 'digits') to "
                                                                      "measure top-1/top-5 for the card's model-index "
                                                                      "and draw its confusion matrix (default: the "
                                                                      "accuracy finetune recorded)."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty --dry-run directory."),
) -> None:
    """Publish weights so `timm.create_model('hf-hub:ORG/NAME', pretrained=True)` loads them."""
    from ..tasks.publish import publish, read_label_file

    label_names = read_label_file(labels) if labels is not None else None
    console = Console(stderr=True)
    action = f"Writing {dry_run}" if dry_run else f"Uploading to {repo_id}"
    with console.status(f"{action} ..."):
        result = publish(name, weights, repo_id, private=private, revision=revision, dry_run_dir=dry_run,
                         license=license, datasets=dataset, metrics=_metrics(metric), label_names=label_names,
                         overwrite=force, eval_data=eval_data)
    folder = result.folder
    for note in folder.notes:
        console.print(f"[yellow]Note:[/yellow] {plain(note)}", highlight=False)
    out = Console()
    out.print(f"[bold]{folder.architecture}[/bold] ({folder.config['num_classes']} classes) -> {repo_id}")
    out.print(f"model.safetensors sha256 {folder.sha256}")
    if result.uploaded:
        out.print(f"commit {result.commit_sha}" + (f" on {result.revision}" if result.revision else ""))
        out.print(f"{result.commit_url}")
        out.print(f"Load: timm.create_model('hf-hub:{repo_id}', pretrained=True)  # after import resnet_hub")
    else:
        for file in folder.files:
            out.print(f"  {plain(str(folder.path / file))}", highlight=False)
        out.print(f"Dry run: nothing uploaded. Check it with timm.create_model('local-dir:{plain(str(folder.path))}', "
                  "pretrained=True) after import resnet_hub.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_command)
