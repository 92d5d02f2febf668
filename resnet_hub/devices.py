"""Turn a user's ``--device`` into a ``torch.device`` this machine really has, or one clear error.

``torch.device('tpu')`` raises a RuntimeError listing every backend PyTorch was ever built for, and
``--device cuda`` without a GPU fails only at the first ``.to('cuda')`` with a driver message; both should
be one line that says what to pass instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import DeviceError

if TYPE_CHECKING:
    import torch

SUPPORTED = ("cpu", "cuda", "mps")


def resolve_device(device: str) -> "torch.device":  # torch imported lazily
    """``'cpu'``, ``'cuda'``, ``'cuda:1'`` or ``'mps'`` as a ``torch.device`` that is usable here."""
    import torch

    text = str(device).strip().lower()
    try:
        resolved = torch.device(text)
    except (RuntimeError, ValueError):
        resolved = None
    if resolved is None or resolved.type not in SUPPORTED:
        raise DeviceError(f"Unknown device '{device}': use cpu, or cuda / cuda:N for an NVIDIA GPU "
                          f"(mps on Apple silicon).")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            built = torch.version.cuda
            why = f"this PyTorch is built for CUDA {built} but finds no GPU" if built else \
                "this PyTorch is a CPU-only build"
            raise DeviceError(f"--device {device} was asked for, but {why}; use --device cpu.")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DeviceError(f"--device {device}: this machine has {count} CUDA device(s), numbered 0..{count - 1}.")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"--device {device} needs Apple's Metal (MPS) backend, which is not available here; "
                          "use --device cpu.")
    return resolved
