"""Safetensors weights I/O: the only format on our load path, because it cannot run code.

Every failure is turned into a typed error that says what is wrong and what to do, and nothing is
half-written: files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from .errors import CorruptWeightsError, IncompatibleWeightsError, WeightsError

FORMAT_VERSION = "1"
# Pickle checkpoint extensions: never read on the load path (unpickling can run code).
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl")
# Buffers that older or foreign checkpoints legitimately omit; BatchNorm re-creates them.
OPTIONAL_KEY_SUFFIXES = ("num_batches_tracked",)


def sha256_of_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: str | os.PathLike, write_fn, overwrite: bool = False) -> Path:
    """Call ``write_fn(tmp_path)`` then rename onto ``path``; an existing file is kept unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def save_weights(
    weights: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    architecture: str,
    metadata: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> str:
    """Write a state dict as safetensors with our metadata; returns the file's sha256."""
    from safetensors.torch import save_file

    from ._version import __version__

    state_dict = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    header = {"format": "pt", "architecture": architecture, "resnet_hub_version": __version__,
              "resnet_hub_format": FORMAT_VERSION}
    for key, value in (metadata or {}).items():
        header[key] = value if isinstance(value, str) else json.dumps(value)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header), overwrite=overwrite)
    return sha256_of_file(path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors header metadata, read without loading tensors."""
    from safetensors import safe_open

    _check_readable(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types, which differ between versions
        raise CorruptWeightsError(_corrupt_message(path, exc)) from exc


def load_weights(
    path: str | os.PathLike, expected_sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file; returns (state_dict, metadata). Verifies the checksum when given."""
    from safetensors.torch import load_file

    _check_readable(path)
    if expected_sha256:
        verify_sha256(path, expected_sha256)
    metadata = read_metadata(path)
    try:
        state_dict = load_file(str(path))
    except Exception as exc:
        raise CorruptWeightsError(_corrupt_message(path, exc)) from exc
    return state_dict, metadata


def verify_sha256(path: str | os.PathLike, expected: str, hint: str = "download it again") -> None:
    """Raise CorruptWeightsError unless the file's sha256 is ``expected``; ``hint`` says how to recover."""
    actual = sha256_of_file(path)
    if actual != expected.lower():
        raise CorruptWeightsError(
            f"{path} failed its integrity check: sha256 is {actual}, expected {expected}. The file is corrupted or "
            f"not the published one; delete it and {hint}."
        )


def _check_readable(path: str | os.PathLike) -> None:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights file not found: {path}")
    if path.suffix in PICKLE_SUFFIXES:
        raise WeightsError(
            f"{path} is a pickle checkpoint; the load path only reads safetensors because pickle can run code. "
            f"Convert it once with: resnet-hub convert {path} --from torchvision --model NAME --output OUT.safetensors"
        )


def _corrupt_message(path, exc: Exception) -> str:
    return (
        f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}). It may be truncated by an "
        "interrupted download or not be safetensors at all; download or convert it again."
    )


def check_architecture(metadata: Mapping[str, str], architecture: str, path: str | os.PathLike = "weights") -> None:
    """Refuse weights recorded for another architecture before any tensor is touched."""
    recorded = metadata.get("architecture")
    if recorded and recorded.split(".", 1)[0] != architecture.split(".", 1)[0]:
        raise IncompatibleWeightsError(
            f"{path} holds weights for '{recorded}', not '{architecture}'. "
            f"Create the model as '{recorded}' or pass the weights made for '{architecture}'."
        )


def load_state_dict_into(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True, source: str = "state dict"
) -> None:
    """``load_state_dict`` with every mismatch reported at once, and the model untouched on failure."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith(OPTIONAL_KEY_SUFFIXES)]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    problems = []
    if mismatched:
        problems.append(_listing("shape mismatches", mismatched))
    if strict and missing:
        problems.append(_listing("missing keys", missing))
    if strict and unexpected:
        problems.append(_listing("unexpected keys", unexpected))
    if problems:
        name = getattr(model, "model_name", type(model).__name__)
        raise IncompatibleWeightsError(
            f"{source} does not fit {name}: " + "; ".join(problems) + ". Check that the weights were made for "
            "this architecture with the same num_classes / in_chans, or convert them with `resnet-hub convert`."
        )
    filled = dict(state_dict)
    for key in own:
        if key not in filled and key.endswith(OPTIONAL_KEY_SUFFIXES):
            filled[key] = own[key]
    model.load_state_dict(filled, strict=strict)


def _listing(title: str, items: list[str], limit: int = 5) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{len(items)} {title}: " + ", ".join(items[:limit]) + more


def load_weights_into(
    model: nn.Module,
    path: str | os.PathLike,
    architecture: str | None = None,
    strict: bool = True,
    expected_sha256: str | None = None,
) -> dict[str, str]:
    """Load a safetensors file into ``model`` after checking its recorded architecture; returns metadata."""
    state_dict, metadata = load_weights(path, expected_sha256=expected_sha256)
    architecture = architecture or getattr(model, "model_name", None)
    if architecture:
        check_architecture(metadata, architecture, path)
    load_state_dict_into(model, state_dict, strict=strict, source=str(path))
    return metadata
