"""Live processes read from Linux's /proc, for tests that kill one process of a run (a torchrun rank, a Ray Train
worker) the way a crash or an OOM kill would."""

from __future__ import annotations

from pathlib import Path


def parent_pids() -> dict[int, int]:
    """{pid: parent pid} of every live process (one that exits while being read is left out)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # the command name in (...) may hold spaces and parentheses: the fields after the last ")"
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def descendants(root: int) -> list[int]:
    """Every live process below ``root``: children, their children, and so on."""
    parents = parent_pids()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def read_proc(pid: int, name: str) -> bytes:
    """``/proc/PID/NAME`` (``cmdline``, ``environ``: NUL-separated); empty when the process has gone."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""
