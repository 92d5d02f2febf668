"""Ctrl-C in the ``resnet-hub`` command: one short line and exit code 130, never a KeyboardInterrupt traceback.

Installed by the package ``__init__`` before torch and timm are imported (seconds of start-up during which
a traceback would otherwise be printed), and only when this process is the console script or
``python -m resnet_hub``: a library import never changes the signal handling of its host program.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_CODE = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


def running_as_cli() -> bool:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
    if argv0 in ("resnet-hub", "resnet-hub.exe", "resnet-hub-script.py"):
        return True
    orig = getattr(sys, "orig_argv", [])
    return any(a == "-m" and i + 1 < len(orig) and orig[i + 1] == "resnet_hub" for i, a in enumerate(orig))


def _on_interrupt(signum, frame) -> None:  # noqa: ARG001  (signal handler signature)
    try:
        sys.stderr.write("\nInterrupted.\n")
        sys.stderr.flush()
    except Exception:
        pass
    # SystemExit unwinds like KeyboardInterrupt (finally blocks and context managers clean up staging folders
    # and temporary files) but is not turned into "Aborted!" + exit 1 by click, and prints no traceback.
    raise SystemExit(EXIT_CODE)


def install() -> None:
    """Replace the default SIGINT handler (main thread only, and only if nobody replaced it already)."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_interrupt)
    except ValueError:  # not the main thread
        pass


def install_if_cli() -> None:
    if running_as_cli():
        install()
