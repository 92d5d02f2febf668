"""Helpers shared by the Hub tests (imported by name: a module called ``conftest`` is ambiguous)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save


def safetensors_bytes(model: torch.nn.Module) -> bytes:
    return save({k: v.contiguous() for k, v in model.state_dict().items()}, metadata={"format": "pt"})


@dataclass
class HubCache:
    """Lays out ``$HF_HUB_CACHE/models--org--name`` by hand (the layout huggingface_hub reads)."""

    root: Path

    def add(self, repo_id: str, files: dict[str, bytes], revision: str = "main", commit: str | None = None,
            as_blobs: bool = True) -> str:
        repo = self.root / f"models--{repo_id.replace('/', '--')}"
        commit = commit or hashlib.sha1(repo_id.encode() + revision.encode()).hexdigest()
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        if revision != commit:
            (repo / "refs" / revision).write_text(commit)  # no trailing newline: it would break every lookup
        for name, data in files.items():
            target = snapshot / name
            if as_blobs:  # like a real download: a blob named by its sha256 (the LFS etag) plus a relative link
                blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
                blob.parent.mkdir(exist_ok=True)
                blob.write_bytes(data)
                target.symlink_to(Path("../../blobs") / blob.name)
            else:
                target.write_bytes(data)
        return commit

    def path(self, repo_id: str, name: str, commit: str) -> Path:
        return self.root / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit / name
