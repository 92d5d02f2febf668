"""Progress for long commands: live bars on a terminal, one plain line per finished task when piped or logged.

rich draws its bars only on an interactive terminal; piped into a file or a CI log it prints the last frame
once, at the end, cut to 80 columns (``epoch 1/6 ━━ 2… ... 0:…``). :func:`progress_display` returns rich's
``Progress`` on a terminal and otherwise a :class:`LineProgress` with the same calls (``add_task``,
``update``, ``advance``), which writes one complete line when a task is done: one line per epoch for
``finetune``, one per run for ``predict``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Union

from rich.console import Console
from rich.progress import Progress, ProgressColumn, TaskID

from .text import plain


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0
    fields: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    printed: bool = False


class LineProgress:
    """The calls of ``rich.progress.Progress`` that our commands use, rendered as one line per finished task.

    A task's line is written when the next task is added or when the display closes, so that updates made
    after its last step (an epoch's validation accuracy) are on it."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self.tasks: list[_Task] = []

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> TaskID:
        self._flush()
        self.tasks.append(_Task(description, total, fields=dict(fields)))
        return TaskID(len(self.tasks) - 1)  # rich's task ids (a NewType of int), so both displays take them

    def update(self, task_id: int, *, completed: float | None = None, advance: float | None = None,
               total: float | None = None, description: str | None = None, **fields: Any) -> None:
        task = self.tasks[task_id]
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if total is not None:
            task.total = total
        if description is not None:
            task.description = description
        task.fields.update(fields)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _flush(self) -> None:
        for task in self.tasks:
            if task.printed:
                continue
            task.printed = True
            if not self.enabled:
                continue
            done = f"{task.completed:g}/{task.total:g}" if task.total is not None else f"{task.completed:g}"
            extra = "  ".join(str(v) for v in task.fields.values() if str(v))
            seconds = time.perf_counter() - task.started
            line = "  ".join(part for part in (task.description, done, extra, f"{seconds:.1f} s") if part)
            self.console.print(plain(line), highlight=False, soft_wrap=True)


def progress_display(console: Console, *columns: Union[str, ProgressColumn],
                     **kwargs: Any) -> Union[Progress, LineProgress]:
    """rich's ``Progress(*columns, console=console, **kwargs)`` on a terminal; a :class:`LineProgress` when the
    console is piped or logged (then ``transient`` does not apply: the lines are the record; ``disable`` does)."""
    if console.is_terminal:
        return Progress(*columns, console=console, **kwargs)
    return LineProgress(console, enabled=not kwargs.get("disable", False))
