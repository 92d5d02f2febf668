"""Safetensors weights I/O: the only format on our load path, because it cannot run code.

Every failure is turned into a typed error that says what is wrong and what to do, and nothing is
half-written: files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from ..errors import CorruptWeightsError, IncompatibleWeightsError, OutputPathError, WeightsError
from .. import leftovers
from ..leftovers import TMP_SUFFIX, tmp_prefix

FORMAT_VERSION = "1"
# Pickle checkpoint extensions: never read on the load path (unpickling can run code).
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl")
# Buffers that older or foreign checkpoints legitimately omit; BatchNorm re-creates them.
OPTIONAL_KEY_SUFFIXES = ("num_batches_tracked",)


def sha256_of_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` is a set-and-restore that
    races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sweep_stale_tmp(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the hidden temporary files of ``path`` that a killed writer (SIGKILL, power loss) left beside it;
    returns them. Only files whose writer provably no longer runs (same host, pid gone) are removed: those of
    live processes, of other hosts (a shared file system) and untagged ones are left alone."""
    path = Path(path)
    return leftovers.sweep_stale_tmp(path.parent, name=path.name)


def atomic_write(path: str | os.PathLike[str], write_fn: Callable[[str], object], overwrite: bool = False) -> Path:
    """Call ``write_fn(tmp_path)`` then rename onto ``path``; an existing file is kept unless ``overwrite``.

    The file gets the mode an ordinary ``open(path, 'w')`` would (0666 minus the umask), not mkstemp's private
    0600, so weights, converted files and Hub folders are as readable as the exports beside them. A location
    that cannot be written raises :class:`OutputPathError` naming it. Temporary files that killed writers of
    the same ``path`` left behind are swept first (:func:`sweep_stale_tmp`).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (CLI: --force) to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable_output(path, exc, f"cannot create the folder {path.parent}") from exc
    sweep_stale_tmp(path)
    try:
        # the temporary name records this process (pid, host): a later run sweeps it if we are killed
        fd, tmp_name = tempfile.mkstemp(prefix=tmp_prefix(path.name), suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise unwritable_output(path, exc, f"cannot create files in {path.parent}") from exc
    os.close(fd)
    try:
        write_fn(tmp_name)
        os.chmod(tmp_name, 0o666 & ~current_umask())
        os.replace(tmp_name, path)
    except BaseException as exc:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and not isinstance(exc, OutputPathError):
            raise unwritable_output(path, exc) from exc
        raise
    return path


def unwritable_output(path: str | os.PathLike[str], exc: OSError, step: str = "") -> OutputPathError:
    """The typed error for an output that cannot be created, saying which part of the path is to blame."""
    path = Path(path)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    else:
        detail = exc.strerror or type(exc).__name__
        reason = f"{step} ({detail})" if step else detail
    return OutputPathError(
        f"Cannot write {path}: {reason}. Choose an output in a folder you can write to (not /proc, /sys or a "
        "read-only mount); nothing was written."
    )


def save_weights(
    weights: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    architecture: str,
    metadata: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> str:
    """Write a state dict as safetensors with our metadata; returns the file's sha256."""
    from safetensors.torch import save_file

    from .._version import __version__

    state_dict = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    header = {"format": "pt", "architecture": architecture, "resnet_hub_version": __version__,
              "resnet_hub_format": FORMAT_VERSION}
    for key, value in (metadata or {}).items():
        header[key] = value if isinstance(value, str) else json.dumps(value)
    def write(tmp: str) -> None:
        save_file(tensors, tmp, metadata=header)
        canonicalise_header(tmp)

    atomic_write(path, write, overwrite=overwrite)
    return sha256_of_file(path)


def canonicalise_header(path: str | os.PathLike[str]) -> None:
    """Sort the safetensors metadata keys in place, so equal weights and metadata give equal bytes (and sha256).

    The safetensors writer keeps metadata in a hash map whose order changes from run to run. Only the order
    inside ``__metadata__`` changes, so the header keeps its length and is rewritten where it is.
    """
    with open(path, "r+b") as handle:
        (header_len,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_len))
        metadata = header.get("__metadata__")
        if not isinstance(metadata, dict):
            return
        header["__metadata__"] = dict(sorted(metadata.items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) > header_len:  # never expected: the same keys and values, in another order
            raise RuntimeError(f"canonical safetensors header of {path} is longer than the original")
        handle.seek(8)
        handle.write(text + b" " * (header_len - len(text)))


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The safetensors header metadata, read without loading tensors."""
    from safetensors import safe_open

    _check_readable(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types, which differ between versions
        raise CorruptWeightsError(_corrupt_message(path, exc)) from exc


def load_weights(
    path: str | os.PathLike[str], expected_sha256: str | None = None
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


def verify_sha256(path: str | os.PathLike[str], expected: str, hint: str = "download it again") -> None:
    """Raise CorruptWeightsError unless the file's sha256 is ``expected``; ``hint`` says how to recover."""
    actual = sha256_of_file(path)
    if actual != expected.lower():
        raise CorruptWeightsError(
            f"{path} failed its integrity check: sha256 is {actual}, expected {expected}. The file is corrupted or "
            f"not the published one; delete it and {hint}."
        )


def _check_readable(path: str | os.PathLike[str]) -> None:
    path = Path(path)
    check_regular_file(path, WeightsError, what="Weights file")
    if path.suffix in PICKLE_SUFFIXES:
        raise WeightsError(
            f"{path} is a pickle checkpoint; the load path only reads safetensors because pickle can run code. "
            f"Convert it once with: resnet-hub convert {path} --from torchvision --model NAME --output OUT.safetensors"
        )


def check_regular_file(path: Path, error: type[Exception], what: str = "File", folder_hint: str | None = None) -> None:
    """Raise ``error`` with the real reason a path is not a readable file: missing, a folder, a named pipe or a
    device (reading ``/dev/zero`` or a FIFO would never end)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read ({exc.strerror or exc}).") from None
    if stat.S_ISDIR(mode):
        inside = path / "model.safetensors"
        example = f" (e.g. {inside})" if inside.is_file() else ""
        raise error(folder_hint or f"{path} is a folder, not a weights file: pass the .safetensors file inside "
                                   f"it{example}.")
    if not stat.S_ISREG(mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise error(f"{path} is {kind}, not a regular file: pass a .safetensors file saved on disk.")
    if not os.access(path, os.R_OK):
        raise error(f"{what} {path} is not readable (permission denied).")


def _corrupt_message(path: str | os.PathLike[str], exc: Exception) -> str:
    return (
        f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}). It may be truncated by an "
        "interrupted download or not be safetensors at all; download or convert it again."
    )


def check_architecture(metadata: Mapping[str, str], architecture: str,
                       path: str | os.PathLike[str] = "weights") -> None:
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
    name = getattr(model, "model_name", type(model).__name__)
    if problems:
        from .identify import looks_like

        guess = looks_like(state_dict, exclude=name)
        hint = (f" The weights look like {guess}: create that model instead. " if guess else
                " Check that the weights were made for this architecture with the same num_classes / in_chans, "
                "or convert them with `resnet-hub convert`.")
        raise IncompatibleWeightsError(f"{source} does not fit {name}: " + "; ".join(problems) + "." + hint)
    check_weight_values({k: v for k, v in state_dict.items() if k in own}, source, reference=own, model_name=name)
    filled = dict(state_dict)
    for key in own:
        if key not in filled and key.endswith(OPTIONAL_KEY_SUFFIXES):
            filled[key] = own[key]
    model.load_state_dict(filled, strict=strict)


def _dtype_kind(dtype: torch.dtype) -> str:
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "floating-point"
    return "boolean" if dtype == torch.bool else "integer"


def check_weight_values(
    state_dict: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]],
    source: str = "state dict",
    reference: Mapping[str, torch.Tensor] | None = None,
    model_name: str = "the model",
) -> None:
    """Refuse tensors whose dtype kind differs from the model's, or that hold NaN / Inf.

    ``load_state_dict`` silently casts int64 weights to float (a model that outputs a uniform distribution)
    and copies NaN, so both would give wrong answers without an error. A floating-point checkpoint of another
    precision (fp16 / bf16) is accepted: the copy into the model's dtype is exact or rounds as intended.
    ``reference`` is the model's own state dict; without it every tensor must be floating point except the
    BatchNorm counters (``num_batches_tracked``), which are integers.
    """
    wrong_kind = []
    non_finite = []
    items = state_dict.items() if isinstance(state_dict, Mapping) else state_dict  # an iterable reads lazily
    for key, tensor in items:
        if reference is not None and key in reference:
            expected = _dtype_kind(reference[key].dtype)
            expected_name = str(reference[key].dtype).replace("torch.", "")
        else:
            expected = "integer" if key.endswith(OPTIONAL_KEY_SUFFIXES) else "floating-point"
            expected_name = expected
        actual = _dtype_kind(tensor.dtype)
        if actual != expected:
            wrong_kind.append(f"{key}: {str(tensor.dtype).replace('torch.', '')} (expected {expected_name})")
        elif actual == "floating-point" and tensor.numel() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            non_finite.append(f"{key} ({bad} of {tensor.numel()} values)")
    if wrong_kind:
        raise IncompatibleWeightsError(
            f"{source} holds tensors of the wrong type for {model_name}: " + _listing("tensor(s)", wrong_kind)
            + ". Loading would silently cast them into meaningless weights; save the floating-point weights "
            "(e.g. {k: v.float() for k, v in model.state_dict().items()} before the cast to integers) or convert "
            "the original checkpoint with `resnet-hub convert`."
        )
    if non_finite:
        raise CorruptWeightsError(
            f"{source} holds NaN or infinite values: " + _listing("tensor(s)", non_finite)
            + ". Every prediction would be NaN; use a checkpoint from before training diverged."
        )


def _listing(title: str, items: list[str], limit: int = 5) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{len(items)} {title}: " + ", ".join(items[:limit]) + more


def load_weights_into(
    model: nn.Module,
    path: str | os.PathLike[str],
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
