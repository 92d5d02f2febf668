"""Which variant a state dict was made for, from its tensor names and shapes alone.

timm's published files (and most checkpoints) record no architecture, so a file for another depth or
width only fails deep inside ``load_state_dict`` with lists of keys. Matching the file's names and shapes
against every variant of the table turns that into "these look like myresnet34".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

# The classifier (any num_classes) and the BatchNorm counters say nothing about the architecture.
_IGNORED_PREFIXES = ("fc.",)
_IGNORED_SUFFIXES = ("num_batches_tracked",)


def signature(shapes: Mapping[str, Sequence[int]]) -> frozenset[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the backbone tensors (the part that identifies an architecture)."""
    return frozenset(
        (key, tuple(int(d) for d in shape)) for key, shape in shapes.items()
        if not key.startswith(_IGNORED_PREFIXES) and not key.endswith(_IGNORED_SUFFIXES)
    )


@lru_cache(maxsize=None)
def _variant_signature(name: str) -> frozenset[tuple[str, tuple[int, ...]]]:
    import torch

    from ..model.architectures import build_architecture  # local import: torch only when a file does not fit

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost worth mentioning
        model = build_architecture(name, num_classes=0)
    return signature({k: tuple(v.shape) for k, v in model.state_dict().items()})


def identify(shapes: Mapping[str, Sequence[int]]) -> str | None:
    """The variant whose backbone has exactly these tensor names and shapes (3 input channels), or None."""
    from ..model.configs import VARIANTS
    from .converters.timm_resnetv2 import _rename, is_timm_resnetv2_state_dict

    if is_timm_resnetv2_state_dict(shapes):  # type: ignore[arg-type]  # only the keys are read
        shapes = {_rename(k): v for k, v in shapes.items()}
    wanted = signature(shapes)
    if not wanted:
        return None
    for name in VARIANTS:
        if _variant_signature(name) == wanted:
            return name
    return None


def looks_like(state_dict: Mapping[str, object], exclude: str | None = None) -> str | None:
    """A readable guess such as ``'myresnet34 (timm resnet34)'`` for tensors (or shapes) that do not fit a model;
    None when nothing matches or the match is ``exclude`` (the model itself: then the head or in_chans differ)."""
    from ..model.configs import VARIANTS

    shapes: dict[str, tuple[int, ...]] = {k: tuple(getattr(v, "shape", v)) for k, v in state_dict.items()}  # type: ignore[arg-type]  # objects without .shape are shapes
    name = identify(shapes)
    if name is None or (exclude and name == exclude.split(".", 1)[0]):
        return None
    variant = VARIANTS[name]
    peers = [f"{lib} {peer}" for lib, peer in (("timm", variant.timm_name), ("torchvision", variant.torchvision_name),
                                                ("Keras", variant.keras_name)) if peer]
    return name + (f" ({', '.join(peers)})" if peers else "")
