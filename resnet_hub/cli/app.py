"""Entry point of the ``resnet-hub`` console script.

Each command group lives in its own module with a ``register(app)`` function, so commands can be read
(and tested) one at a time; this module only assembles them and turns our typed errors into exit codes.
"""

from __future__ import annotations

import sys

import typer

from ..errors import ResNetHubError

app = typer.Typer(
    name="resnet-hub",
    help="ResNet family for timm / torch.hub: list, inspect, predict, benchmark, convert, publish and export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One line per command module; each module defines register(app).
from . import models  # noqa: E402
from . import convert  # noqa: E402
from . import publish  # noqa: E402

models.register(app)
convert.register(app)
publish.register(app)
from . import predict  # noqa: E402
predict.register(app)
from . import benchmark  # noqa: E402
benchmark.register(app)
from . import export as export_cli  # noqa: E402
export_cli.register(app)


def main() -> None:
    """Run the CLI; library errors become one readable line and exit code 1 instead of a traceback."""
    try:
        app()
    except ResNetHubError as exc:
        typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
