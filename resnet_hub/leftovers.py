"""Hidden temporary files that name their owner, so a later run can sweep those a killed process left behind.

Every atomic write goes through a hidden temporary file beside its destination (``.NAME.<pid>-<host>-XXXX.tmp``)
that is renamed into place at the end. SIGKILL, OOM kills and power loss run no cleanup, so the temporary file
stays; a fine-tune checkpoints every epoch, so a killed run would otherwise leave a growing pile of them. The pid
and host in the name let a later run tell a file whose owner is gone (swept) from one a live process on this
machine, or a process on another machine sharing the folder, is still writing (kept). Scratch and staging
folders follow the same rule (:func:`folder_prefix`, :func:`sweep_stale_folders`): export's staging folders
(``export/files.py``) and each Ray Train worker's scratch folder (``tasks/ray_train.py``).

Standard library only: this module sits on the floor, below weights I/O and training.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

TMP_SUFFIX = ".tmp"
# .<name>.<pid>-<host>-<random>.tmp  (mkstemp adds the random part between prefix and suffix)
_TAGGED = re.compile(r"^\..+\.(\d+)-([A-Za-z0-9]*)-[A-Za-z0-9_]+" + re.escape(TMP_SUFFIX) + r"$")


def host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def tmp_prefix(name: str) -> str:
    """The ``mkstemp`` prefix of this process's temporary file for destination ``name``: hidden, and naming
    the owner's pid and host."""
    return f".{name}.{os.getpid()}-{host_tag()}-"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _abandoned(pid: int, host: str) -> bool:
    """Whether the owner named by (pid, host) provably no longer runs: a process of this host, not this one,
    that has exited. Another host's pid says nothing here (a shared file system), so its files are kept."""
    return host == host_tag() and pid != os.getpid() and not pid_alive(pid)


def sweep_stale_tmp(directory: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete the tagged temporary files in ``directory`` whose owner process (on this host) no longer runs;
    with ``name``, only those of that destination file.

    Files of live processes, of other hosts and untagged files are left alone: only a file that provably has
    no owner any more is deleted. Returns what was removed.
    """
    removed: list[Path] = []
    folder = Path(directory)
    if not folder.is_dir():
        return removed
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        if name is not None and not path.name.startswith(f".{name}."):
            continue
        match = _TAGGED.match(path.name)
        if not match or not _abandoned(int(match.group(1)), match.group(2)):
            continue
        try:
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
        except OSError:
            pass
    return removed


def folder_prefix(kind: str) -> str:
    """The ``mkdtemp`` prefix of this process's folder of ``kind`` (e.g. ``.resnet-hub-staging-``): it names the
    owner's pid and host, so :func:`sweep_stale_folders` can tell when nobody owns it any more."""
    return f"{kind}{os.getpid()}-{host_tag()}-"


def sweep_stale_folders(directory: str | os.PathLike, kind: str) -> list[Path]:
    """Delete the folders of ``kind`` in ``directory`` whose owner process (on this host) no longer runs.

    Folders of live processes, of other hosts (a shared file system) and of names without an owner are left
    alone: only a folder that provably has no owner any more is deleted. Returns what was removed.
    """
    removed: list[Path] = []
    folder = Path(directory)
    owned = re.compile(r"^" + re.escape(kind) + r"(\d+)-([A-Za-z0-9]*)-")
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return removed
    for path in entries:
        match = owned.match(path.name)
        if not match or not _abandoned(int(match.group(1)), match.group(2)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
