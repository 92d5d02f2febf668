"""One way to hash what an export writes and reads: sha256, hex, streamed in 1 MiB chunks.

Manifests, engine records, the engine cache, ``verify`` and the export-directory reader all compare these digests,
so they must all come from here.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Iterable

CHUNK = 1 << 20


def _update(digest: "hashlib._Hash", handle: BinaryIO) -> None:
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        digest.update(chunk)


def sha256_of(data: bytes | str | os.PathLike) -> str:
    """The sha256 of ``data``: bytes as they are, or a path's file content (streamed)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(data)).hexdigest()
    digest = hashlib.sha256()
    with open(data, "rb") as handle:
        _update(digest, handle)
    return digest.hexdigest()


def sha256_of_text(text: str) -> str:
    return sha256_of(text.encode())


def sha256_of_files(paths: Iterable[str | os.PathLike]) -> str:
    """One sha256 over several files (an ONNX graph and its external data), by name and content, in a fixed
    order: renaming a file changes the digest, since a graph refers to its data file by name."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            _update(digest, handle)
        digest.update(b"\0")
    return digest.hexdigest()
