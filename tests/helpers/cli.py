"""The ``resnet-hub`` command run as a user runs it: a fresh process, the real entry point, the real environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env(env: dict[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment with a wide terminal (no wrapped lines to assert on) and unbuffered output;
    ``env`` adds variables, and a ``None`` value removes one."""
    merged: dict[str, str | None] = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    merged.update(env or {})
    return {key: value for key, value in merged.items() if value is not None}


@contextmanager
def hidden_packages(blocked: tuple[str, ...], env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``env`` for a child in which each of ``blocked`` fails to import, as if it were not installed.

    A ``sitecustomize`` sets ``sys.modules[name] = None``: what ``import name`` meets for an uninstalled package
    (ImportError), without touching the library or the environment's site-packages.
    """
    if not blocked:
        yield env
        return
    shim = Path(tempfile.mkdtemp(prefix="resnet-hub-hide-"))
    try:
        (shim / "sitecustomize.py").write_text(textwrap.dedent(f"""
            import sys
            for name in {list(blocked)!r}:
                sys.modules[name] = None
        """))
        yield dict(env, PYTHONPATH=str(shim) + os.pathsep + env.get("PYTHONPATH", ""))
    finally:
        shutil.rmtree(shim, ignore_errors=True)


def run_cli(*args: object, blocked: tuple[str, ...] = (), env: dict[str, str | None] | None = None,
            cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m resnet_hub ARGS`` in a fresh process; ``blocked`` packages fail to import there."""
    with hidden_packages(blocked, child_env(env)) as child:
        return subprocess.run([sys.executable, "-m", "resnet_hub", *map(str, args)], capture_output=True,
                              text=True, env=child, cwd=cwd or REPO_ROOT, timeout=timeout)


def run_python(code: str, *args: object, blocked: tuple[str, ...] = (), env: dict[str, str | None] | None = None,
               cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -c CODE ARGS`` (dedented) in a fresh process, with the environment :func:`run_cli` gives."""
    with hidden_packages(blocked, child_env(env)) as child:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                              text=True, env=child, cwd=cwd or REPO_ROOT, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single ``Error: ...`` line a refused command prints (exit 1, no traceback): bad input's contract."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]
