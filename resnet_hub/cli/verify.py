"""``resnet-hub verify DIR``: a thin CLI over :func:`resnet_hub.export.audit.audit_export`.

Prints one table per export (files re-hashed against the manifest, parity re-run or why not) and exits 1 with
the list of failures when anything differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

_STYLE = {"ok": "green", "passed": "green", "not shipped": "dim", "not re-run": "yellow"}


def verify_command(
    directory: Path = typer.Argument(..., help="An export directory (ONNX, TensorRT) or a Triton model repository."),
    parity: bool = typer.Option(True, "--parity/--no-parity", help="Re-run parity with PyTorch where possible."),
    weights: Optional[Path] = typer.Option(None, "--weights",
                                           help="The exported weights, if the recorded path is not on this machine."),
) -> None:
    """Re-hash every exported file against manifest.json and re-run parity on the runtimes available here."""
    from resnet_hub.export.audit import audit_export

    result = audit_export(directory, parity=parity, weights=weights)
    console = Console(width=160)
    for audit in result.exports:
        table = Table(title=f"{audit.directory} ({audit.format})")
        for column in ("check", "item", "result", "detail"):
            table.add_column(column)
        for check in audit.files:
            table.add_row("sha256", check.name, _mark(check.status), check.detail)
        for run in audit.parity:
            table.add_row("parity", f"{run.artifact} ({run.runtime})", _mark(run.status), run.detail)
        for problem in audit.problems:
            table.add_row("manifest", "manifest.json", _mark("failed"), problem)
        console.print(table)
    if not result.ok:
        err = Console(stderr=True, width=160)
        err.print(f"[red]verify failed for {directory}:[/red]", highlight=False)
        for line in result.failures():
            err.print(f"  - {line}", markup=False, highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]{directory}: every file matches its manifest[/green]", highlight=False)


def _mark(status: str) -> str:
    return f"[{_STYLE.get(status, 'red')}]{status}[/]"


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_command)
