"""Piped or logged progress is one clean line per finished task (an epoch, a prediction run), never a cut bar."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from resnet_hub.cli.progress import LineProgress, progress_display


def test_a_piped_console_gets_one_line_per_epoch_with_what_the_epoch_ended_on():
    out = io.StringIO()
    console = Console(file=out, width=80)  # a file: not a terminal, as when piped or logged
    with progress_display(console, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[stats]}")) as progress:
        assert isinstance(progress, LineProgress)
        for epoch in (1, 2):
            task = progress.add_task(f"epoch {epoch}/2", total=3, stats="")
            for step in (1, 2, 3):  # how finetune drives it: per step, then the epoch's validation
                progress.update(task, completed=step, stats=f"loss {1.0 / step:.3f}")
            progress.update(task, stats=f"loss 0.333  val top-1 9{epoch}.0%")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("epoch 1/2  3/3  loss 0.333  val top-1 91.0%  ")
    assert lines[1].startswith("epoch 2/2  3/3  loss 0.333  val top-1 92.0%  ")
    assert all(line.endswith(" s") and "…" not in line and "━" not in line for line in lines)


def test_a_terminal_keeps_rich_bars():
    console = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(progress_display(console, BarColumn()), Progress)


def test_piped_predict_prints_one_progress_line(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (40, 40), (i * 80, 20, 200)).save(tmp_path / f"{i}.png")
    proc = subprocess.run([sys.executable, "-m", "resnet_hub", "predict", "myresnet18", str(tmp_path), "--topk", "1",
                           "--batch-size", "2", "--json"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"), cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    progress = [line for line in proc.stderr.splitlines() if line.startswith("predicting")]
    assert len(progress) == 1 and progress[0].startswith("predicting  3/3  "), proc.stderr
