"""``resnet-hub verify DIR``: a thin CLI over :func:`resnet_hub.export.audit.audit_export`.

Prints one table per export (files re-hashed against the manifest, manifest checks, parity re-run or why not) and
the recorded fields that cannot be verified; on failure, one red line on stderr and exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from .text import plain
from rich.table import Table

_STYLE = {"ok": "green", "passed": "green", "not re-run": "yellow"}


def verify_command(
    directory: Path = typer.Argument(..., help="An export directory (ONNX, TensorRT) or a Triton model repository."),
    hashes_only: bool = typer.Option(False, "--hashes-only",
                                     help="Check files and manifest only; do not require parity to be re-run "
                                          "(the weights are not needed)."),
    weights: Optional[Path] = typer.Option(None, "--weights",
                                           help="The exported weights, if the recorded path is not on this machine."),
    allow_extra: bool = typer.Option(False, "--allow-extra",
                                     help="Accept files in DIR that the manifest does not list."),
) -> None:
    """Check an export against its manifest: paths stay inside DIR, every file re-hashed, unlisted files refused,
    manifest vs graph (and Triton config), and parity with PyTorch re-run with the code's own tolerances."""
    from resnet_hub.export.audit import audit_export

    result = audit_export(directory, hashes_only=hashes_only, weights=weights, allow_extra=allow_extra)
    console = Console(width=160)
    for audit in result.exports:
        table = Table(title=plain(f"{audit.directory} ({audit.format})"))
        for column in ("check", "item", "result", "detail"):
            table.add_column(column)
        for check in audit.files:
            table.add_row("sha256", plain(check.name), _mark(check.status), plain(check.detail))
        for problem in audit.problems:
            table.add_row("manifest", "manifest.json", _mark("failed"), plain(problem))
        for run in audit.parity:
            table.add_row("parity", plain(f"{run.artifact} ({run.runtime})"), _mark(run.status), plain(run.detail))
        console.print(table)
    console.print("not verified (recorded, cannot be re-derived from DIR): " + "; ".join(result.unverified),
                  markup=False, highlight=False)
    if not result.ok:
        failures = result.failures() or [f"{directory}: nothing to verify"]
        more = f" (and {len(failures) - 1} more, listed above)" if len(failures) > 1 else ""
        line = " ".join(failures[0].split())  # one line, whatever a message held
        Console(stderr=True, width=10_000).print(f"[red]verify failed:[/red] {plain(line)}{more}", highlight=False,
                                                 soft_wrap=True)
        raise typer.Exit(1)
    what = "every file matches its manifest" + ("" if hashes_only else " and parity was re-run")
    console.print(f"[green]{plain(str(directory))}: {what}[/green]", highlight=False)


def _mark(status: str) -> str:
    return f"[{_STYLE.get(status, 'red')}]{status}[/]"


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_command)
