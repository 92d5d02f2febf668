"""CLI help is readable in an 80-column terminal: every option name whole, no line wider than the terminal, and
flags shown without a value type (``--force``, not ``--force <bool>``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from resnet_hub.cli.app import app

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND = typer.main.get_command(app)
NAMES = sorted(COMMAND.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", NAMES)
def test_help_at_80_columns_shows_every_option_name_whole(name):
    proc = subprocess.run([sys.executable, "-m", "resnet_hub", name, "--help"], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="80", HF_HUB_OFFLINE="1"), cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide
    command = COMMAND.commands[name]  # type: ignore[attr-defined]
    words = {word.rstrip(",") for word in text.split()}
    options = [opt for param in command.params  # typer vendors its own click: options by their type name
               if getattr(param, "param_type_name", "") == "option" and not getattr(param, "hidden", False)
               for opt in (*param.opts, *param.secondary_opts)]
    assert options, f"no options found for {name}"
    for opt in options:
        assert opt in words, f"{name} --help cuts or hides {opt}:\n{text}"
    assert "<bool>" not in text and "…" not in text
