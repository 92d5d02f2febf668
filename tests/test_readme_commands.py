"""Every `resnet-hub` command the README shows uses options the CLI really has (docs cannot drift from the code)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnet_hub.cli.app import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _readme_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("resnet-hub "):
                commands.append(shlex.split(line.replace("[", "").replace("]", ""))[1:])
    return commands


COMMANDS = _readme_commands()


def test_the_readme_shows_the_lifecycle():
    verbs = {c[0] for c in COMMANDS if c}
    assert {"finetune", "evaluate", "export", "predict", "publish"} <= verbs


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_readme_command_options_exist(argv):
    if not argv or argv[0].startswith("-"):
        return
    help_text = CliRunner().invoke(app, [argv[0], "--help"], terminal_width=200).output
    assert "Usage" in help_text, help_text
    flags = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")]
    missing = [f for f in flags if f not in help_text]
    assert not missing, f"`resnet-hub {argv[0]}` has no option(s) {missing}"
