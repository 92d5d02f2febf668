"""Helpers for tests that drive real subprocesses (import by module name from any test folder)."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Callable


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def interrupt_when(process: subprocess.Popen, ready: Callable[[], bool], *, settle: float = 0.0,
                   timeout: float = 120.0) -> tuple[str, str]:
    """Press Ctrl-C (SIGINT) in ``process`` once ``ready()`` holds and ``settle`` more seconds have passed; its
    (stdout, stderr) after it exits. The process is killed if anything fails, so no test leaves one behind."""
    try:
        wait_for(lambda: ready() or process.poll() is not None, timeout)
        time.sleep(settle)
        if process.poll() is not None:
            raise AssertionError(f"the process ended (exit {process.returncode}) before it could be interrupted: "
                                 f"{process.stderr.read()[-2000:] if process.stderr else ''}")
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
