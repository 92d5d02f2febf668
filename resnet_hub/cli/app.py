"""Entry point of the ``resnet-hub`` console script.

Each command group lives in its own module with a ``register(app)`` function, so commands can be read
(and tested) one at a time; this module only assembles them and turns our typed errors into exit codes.

Start-up is part of the interface: ``--help``, ``COMMAND --help``, ``--version``, shell completion, ``list`` and
``info`` must answer without torch, timm, ONNX or numpy (seconds of imports). So the command modules import only
typer, rich and the plain-Python variant table at the top, and everything heavy inside the command function that
needs it; ``tests/test_cli_startup.py`` checks which modules a real process imports, and
``benchmarks/cli_startup.py`` prints the times as ratios to ``import torch``.
"""

from __future__ import annotations

import sys

import typer

from ..errors import ResNetHubError
from .text import visible

app = typer.Typer(
    name="resnet-hub",
    help="ResNet family for timm / torch.hub: list, inspect, finetune, evaluate, predict, benchmark, convert, "
         "publish and export.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    # Plain click help: wrapped to the terminal (no option name cut short at 80 columns, no `<bool>` on flags) and
    # no markup parsing, so a help text can say `resnet-hub[ray]` as written.
    rich_markup_mode=None,
)

# One module per command group; each defines register(app). Order = order in --help.
from . import benchmark, convert, evaluate, export, finetune, models, predict, publish, verify  # noqa: E402

for _module in (models, finetune, evaluate, predict, benchmark, convert, publish, export, verify):
    _module.register(app)


def _show_version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"resnet-hub {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the installed version and exit."),
) -> None:
    """ResNet family for timm / torch.hub: list, inspect, finetune, evaluate, predict, benchmark, convert, publish
    and export."""


def main() -> None:
    """Run the CLI; library errors become one readable line and exit code 1 instead of a traceback, and
    Ctrl-C one line and exit code 130 (see ``resnet_hub._interrupt``)."""
    from .. import _interrupt

    _interrupt.install()  # also when main() is called by an embedding script rather than the console script
    try:
        app()
    except ResNetHubError as exc:
        # Messages quote data (class and file names): control characters are shown, never sent to the terminal.
        typer.secho(f"Error: {visible(exc, keep=chr(10))}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:  # raised before our handler was installed, or re-raised by a library
        typer.echo("\nInterrupted.", err=True)
        sys.exit(_interrupt.EXIT_CODE)


if __name__ == "__main__":
    main()
