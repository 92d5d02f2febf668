"""Safe output: every artifact is written into a staging directory and moved into place only at the end.

A failed or interrupted export therefore never leaves half-written files where users (or Triton) look,
and an existing artifact is only replaced when the caller asked for it (``force``). The staging directory
lives beside the destination so the final moves are same-filesystem renames.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Iterable

from resnet_hub.leftovers import folder_prefix, sweep_stale_folders  # one owner rule for temporary files and folders
from resnet_hub.weights.io import current_umask, unwritable_output

from .errors import OutputExistsError

STAGING_PREFIX = ".resnet-hub-staging-"
# .resnet-hub-staging-<pid>-<host>-<random>: a later run can tell a folder left by a killed process (SIGKILL,
# power loss: no cleanup ran) from one a live export on this machine is still filling.


def staging_prefix() -> str:
    """The prefix of this process's staging folders: it records the owner's pid and host."""
    return folder_prefix(STAGING_PREFIX)


def clean_stale_staging(directory: str | os.PathLike) -> list[Path]:
    """Remove staging folders in ``directory`` whose owner process (on this host) no longer runs; returns them."""
    return sweep_stale_folders(directory, STAGING_PREFIX)


def make_public(root: Path) -> None:
    """Give staged files the permissions a normal write would (mkdtemp/mkstemp create them private), so a
    server running as another user (Triton in a container) can read the export."""
    mask = current_umask()
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for path in paths:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def existing(target_dir: Path, names: Iterable[str]) -> list[Path]:
    """Which of ``names`` already exist in ``target_dir``."""
    return [target_dir / name for name in names if (target_dir / name).exists()]


def refuse_overwrite(paths: list[Path]) -> None:
    if paths:
        listed = ", ".join(str(p) for p in paths)
        raise OutputExistsError(f"{listed} already exist{'s' if len(paths) == 1 else ''}; pass --force "
                                "(force=True) to replace, or choose another output")


class _Staging:
    """Build output in a private directory beside the destination; ``_commit`` moves it into place.

    On an exception nothing is moved; either way the staging directory is gone when the block ends.
    """

    path: Path | None = None
    _created: list[Path] = []

    def _staging_dir(self, anchor: Path, output: Path) -> Path:
        """Create the staging folder in ``anchor`` (creating ``anchor`` if needed, and remembering which
        folders that created so a failed or interrupted export can remove them again)."""
        self._created = [p for p in [anchor, *anchor.parents] if not p.exists()][::-1]
        try:
            anchor.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._remove_created()
            raise unwritable_output(output, exc, f"cannot create the folder {anchor}") from exc
        clean_stale_staging(anchor)
        try:
            self.path = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=anchor))
        except OSError as exc:
            self._remove_created()
            raise unwritable_output(output, exc, f"cannot create files in {anchor}") from exc
        return self.path

    def _remove_created(self) -> None:
        """Remove the folders this export created, deepest first, as long as they are empty."""
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.path is not None
        try:
            if exc_type is None:
                make_public(self.path)
                self._commit()
        except BaseException:
            exc_type = exc_type or BaseException
            raise
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
            if exc_type is not None:  # failed or interrupted (Ctrl-C): leave no empty repository folder behind
                self._remove_created()

    def _commit(self) -> None:
        raise NotImplementedError


class StagedFiles(_Staging):
    """Files for one flat output directory (``model.onnx``, ``model.plan``, ``manifest.json`` ...).

    ``names`` are the artifacts this export may produce; with ``force`` any of them that the new export does
    not produce is removed too, so a stale ``model.onnx.data`` never sits beside a new single-file model.
    Other files in the directory are never touched.
    """

    def __init__(self, target_dir: str | os.PathLike, names: Iterable[str], force: bool = False) -> None:
        self.target_dir = Path(target_dir)
        self.names = tuple(names)
        self.force = force
        self.path: Path | None = None

    def __enter__(self) -> Path:
        if not self.force:
            refuse_overwrite(existing(self.target_dir, self.names))
        if self.target_dir.exists() and not self.target_dir.is_dir():
            raise OutputExistsError(f"{self.target_dir} exists and is not a directory")
        if not self.target_dir.exists():
            blocker = next((p for p in self.target_dir.parents if p.exists() and not p.is_dir()), None)
            if blocker is not None:
                raise unwritable_output(self.target_dir, NotADirectoryError(20, "Not a directory"))
        return self._staging_dir(self.target_dir if self.target_dir.is_dir() else self.target_dir.parent,
                                 self.target_dir)

    def _commit(self) -> None:
        assert self.path is not None
        produced = sorted(p.name for p in self.path.iterdir())
        unknown = [n for n in produced if n not in self.names]
        if unknown:  # a programming error: every artifact must be declared so overwrite checks cover it
            raise RuntimeError(f"undeclared artifacts staged: {unknown}")
        if not self.force:  # someone may have written there while we worked
            refuse_overwrite(existing(self.target_dir, produced))
        if not self.target_dir.exists():
            # The whole directory appears at once.
            os.replace(self.path, self.target_dir)
            return
        for stale in existing(self.target_dir, [n for n in self.names if n not in produced]):
            _remove(stale)
        # Data files first and manifests last, so a reader that sees the manifest sees a complete export.
        for name in sorted(produced, key=_commit_order):
            target = self.target_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(self.path / name, target)


def _commit_order(name: str) -> tuple[int, str]:
    if name.endswith(".json") or name.endswith(".md"):
        return (2, name)
    if name.endswith(".data"):
        return (0, name)
    return (1, name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


class StagedTree(_Staging):
    """A directory that is replaced as a whole (a Triton model directory): built aside, then swapped in."""

    def __init__(self, target: str | os.PathLike, force: bool = False) -> None:
        self.target = Path(target)
        self.force = force
        self.path: Path | None = None

    def __enter__(self) -> Path:
        if self.target.exists() and not self.force:
            refuse_overwrite([self.target])
        return self._staging_dir(self.target.parent, self.target)

    def _commit(self) -> None:
        assert self.path is not None
        if self.target.exists():
            if not self.force:  # someone may have written there while we worked
                refuse_overwrite([self.target])
            # Move the old tree aside first so the swap is two renames; the old one is deleted afterwards.
            trash = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=self.target.parent))
            os.replace(self.target, trash / "old")
            os.replace(self.path, self.target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(self.path, self.target)


def leftover_staging(directory: str | os.PathLike) -> list[Path]:
    """Staging directories left in ``directory`` (there should never be any after an export returns)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(STAGING_PREFIX))
