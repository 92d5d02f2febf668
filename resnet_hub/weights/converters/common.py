"""What every converter shares: reading torch checkpoints safely, checking the result fits our model, and
writing it as safetensors with provenance metadata.

A conversion is only written after the converted state dict has been loaded (strictly) into the target
variant, so a file that ``resnet-hub convert`` produced always loads.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, cast

import torch

from ...model.configs import Preprocessing, VariantConfig
from ..lookup import get_variant
from ...errors import ConversionError, CorruptWeightsError, IncompatibleWeightsError, UnsafeCheckpointError
from ..io import load_state_dict_into, save_weights, sha256_of_file

if TYPE_CHECKING:
    from ...model.resnet import ResNet
    from ...model.resnetv2 import ResNetV2

# Wrappers training scripts put around the state dict.
_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module")


@dataclass
class ConvertedWeights:
    """A state dict in our layout plus what the output file must record about where it came from."""

    state_dict: dict[str, torch.Tensor]
    architecture: str
    source_format: str
    source_path: Path
    source_sha256: str
    preprocessing: Preprocessing
    num_classes: int
    notes: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, str]:
        return {
            "source_format": self.source_format,
            "source_file": self.source_path.name,
            "source_sha256": self.source_sha256,
            "preprocessing": self.preprocessing.to_json(),
            "num_classes": str(self.num_classes),
            "conversion_notes": json.dumps(self.notes),
        }


@dataclass(frozen=True)
class ConversionReport:
    """What ``convert_checkpoint`` wrote."""

    output: Path
    sha256: str
    architecture: str
    source_format: str
    source_sha256: str
    num_classes: int
    num_tensors: int
    preprocessing: Preprocessing
    notes: tuple[str, ...]


def require_file(path: str | os.PathLike, folder_ok: bool = False) -> Path:
    """The checkpoint path, or a ConversionError saying why it cannot be read (missing, a FIFO or device whose
    read would never end, a folder where a file is needed)."""
    from ..io import check_regular_file

    path = Path(path)
    if folder_ok and path.is_dir():
        return path
    check_regular_file(path, ConversionError, what="Checkpoint",
                       folder_hint=f"{path} is a folder; pass the checkpoint file inside it (only --from transformers "
                                   "takes a model folder).")
    return path


def _unpickling_reason(exc: Exception) -> str:
    """The line of torch's refusal that names what was refused, without its advice to pass
    ``weights_only=False`` (which would run the code this check exists to stop)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if "weights_only" not in line and "Weights only load failed" not in line
              and not line.startswith("Check the documentation")]
    return useful[0] if useful else type(exc).__name__


def read_torch_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a pickle checkpoint loaded with ``weights_only=True``.

    ``weights_only`` refuses any object but tensors and plain containers, so a checkpoint that would run
    code is rejected rather than executed.
    """
    path = require_file(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise CorruptWeightsError(f"{path} is not a readable safetensors file ({exc}); is it truncated?") from exc
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"Refused {path}: it contains objects other than tensors, which could run code when unpickled "
            f"({_unpickling_reason(exc)}). Do not load it with weights_only=False. If you trust its origin, "
            "re-save only the state dict (torch.save(model.state_dict(), ...)) where it was made and run "
            "`resnet-hub convert` on that file."
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CorruptWeightsError(
            f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "it may be truncated or in another format."
        ) from exc
    return unwrap_state_dict(checkpoint, path)


def unwrap_state_dict(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """Find the tensors inside training-script wrappers and drop DataParallel's ``module.`` prefix."""
    for _ in range(3):
        if isinstance(checkpoint, Mapping):
            inner = next((checkpoint[k] for k in _CONTAINER_KEYS if isinstance(checkpoint.get(k), Mapping)), None)
            if inner is not None and not any(isinstance(v, torch.Tensor) for v in checkpoint.values()):
                checkpoint = inner
                continue
        break
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise ConversionError(f"{path} does not hold a state dict (found {type(checkpoint).__name__}).")
    tensors = {str(k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ConversionError(f"{path} holds no tensors.")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def classifier_classes(state_dict: Mapping[str, torch.Tensor]) -> int:
    """Number of classes of our-layout weights (0 for a headless checkpoint)."""
    fc = state_dict.get("fc.weight")
    return int(fc.shape[0]) if fc is not None else 0


def fit_model(state_dict: dict[str, torch.Tensor], variant: VariantConfig, source: str) -> ResNet | ResNetV2:
    """Load the weights strictly into a fresh ``variant`` (num_classes taken from the weights): a wrong
    architecture fails here, with every mismatch listed, instead of producing a file that does not load."""
    from ...model.architectures import build_architecture  # local import: torch's model code only when needed

    # The bare architecture (no timm builder, no pretrained_cfg): the weights floor stands below the zoo.
    model = cast("ResNet | ResNetV2", build_architecture(variant.name, num_classes=classifier_classes(state_dict)))
    try:
        load_state_dict_into(model, state_dict, strict=True, source=source)
    except IncompatibleWeightsError as exc:
        raise IncompatibleWeightsError(f"{exc} (converting to {variant.name})") from None
    return model


def check_fits(state_dict: dict[str, torch.Tensor], variant: VariantConfig, source: str) -> int:
    """:func:`fit_model`, returning only the number of classes."""
    return fit_model(state_dict, variant, source).num_classes


def finish(
    state_dict: dict[str, torch.Tensor],
    model: str,
    source_format: str,
    source_path: Path,
    preprocessing: Preprocessing,
    notes: list[str] | None = None,
    source_sha256: str | None = None,
) -> ConvertedWeights:
    """Check the converted weights fit ``model`` and wrap them with their provenance."""
    variant = get_variant(model)
    state_dict = {k: v.detach().contiguous() for k, v in state_dict.items()}
    num_classes = check_fits(state_dict, variant, str(source_path))
    return ConvertedWeights(
        state_dict=state_dict,
        architecture=variant.name,
        source_format=source_format,
        source_path=source_path,
        source_sha256=source_sha256 or sha256_of_source(source_path),
        preprocessing=preprocessing,
        num_classes=num_classes,
        notes=list(notes or []),
    )


def sha256_of_source(path: Path) -> str:
    """sha256 of a file, or of a directory's files in name order (a transformers folder is the source)."""
    if path.is_file():
        return sha256_of_file(path)
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" + sha256_of_file(file).encode())
    return digest.hexdigest()


def write_converted(
    converted: ConvertedWeights, output: str | os.PathLike, overwrite: bool = False
) -> ConversionReport:
    """Write atomically (an existing file is kept unless ``overwrite``); returns the file's own sha256."""
    output = Path(output)
    if output.suffix != ".safetensors":
        raise ConversionError(f"Output must be a .safetensors file, got {output}")
    if output.exists() and not overwrite:
        raise ConversionError(f"{output} already exists; pass --force (overwrite=True) to replace it.")
    sha = save_weights(converted.state_dict, output, converted.architecture, converted.metadata(), overwrite=overwrite)
    return ConversionReport(
        output=output,
        sha256=sha,
        architecture=converted.architecture,
        source_format=converted.source_format,
        source_sha256=converted.source_sha256,
        num_classes=converted.num_classes,
        num_tensors=len(converted.state_dict),
        preprocessing=converted.preprocessing,
        notes=tuple(converted.notes),
    )
