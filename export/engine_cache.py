"""A directory of built TensorRT engines, each stored under its :func:`export.engine_record.cache_key`.

Building an engine takes minutes for a large model; rebuilding one whose graph, precision, profile, flags,
TensorRT version and GPU architecture are all unchanged buys nothing. An entry is ``<key>.plan`` plus its record
``<key>.plan.json``; it is reused only if the record's key is the one asked for and the plan's sha256 is the
recorded one, so a truncated or swapped file is rebuilt instead of served. Writes are atomic (plan first,
record last), so a reader never sees a record for a half-written plan. No TensorRT needed here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from resnet_hub.weights.io import atomic_write

from .digest import sha256_of
from .engine_record import EngineRecord, EngineRecordError, record_path

_KEY = re.compile(r"^[0-9a-f]{64}$")


class EngineCache:
    """Engines by key under ``directory`` (created on first store)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not an engine cache key: {key!r}")
        return self.directory / f"{key}.plan"

    def lookup(self, key: str) -> tuple[bytes, EngineRecord] | None:
        """The cached engine and its record, or None when absent, incomplete or not matching its record."""
        plan = self.path(key)
        sidecar = record_path(plan)
        if not (plan.is_file() and sidecar.is_file()):
            return None
        try:
            record = EngineRecord.from_dict(json.loads(sidecar.read_text()))
        except (OSError, ValueError, EngineRecordError):
            return None
        engine = plan.read_bytes()
        if (record.cache_key != key or len(engine) != record.engine_bytes
                or sha256_of(engine) != record.engine_sha256):
            return None
        return engine, record

    def store(self, key: str, engine: bytes, record: EngineRecord) -> Path:
        """Write (or replace) the entry for ``key``; returns the plan's path."""
        if record.cache_key != key:
            raise ValueError("the record's cache_key must be the key it is stored under")
        plan = self.path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(plan, lambda tmp: Path(tmp).write_bytes(engine), overwrite=True)
        atomic_write(record_path(plan), lambda tmp: Path(tmp).write_text(record.to_json()), overwrite=True)
        return plan

    def keys(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name[:-len(".plan")] for p in self.directory.glob("*.plan") if _KEY.match(p.stem))
