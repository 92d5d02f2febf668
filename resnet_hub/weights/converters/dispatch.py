"""One entry point for every source format: ``convert_checkpoint(src, 'keras', 'myresnet50_v1', out)``.

Source modules are imported on demand, so converting a torchvision file never imports h5py or transformers.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ...errors import ConversionError
from .common import ConversionReport, ConvertedWeights, write_converted

SOURCE_FORMATS: tuple[str, ...] = ("torchvision", "timm", "keras", "transformers")


def load_foreign(source: str | os.PathLike[str], source_format: str, model: str) -> ConvertedWeights:
    """Convert in memory (nothing written): the state dict in our layout plus its provenance."""
    if source_format not in SOURCE_FORMATS:
        raise ConversionError(f"Unknown source format '{source_format}'; choose one of {', '.join(SOURCE_FORMATS)}.")
    module = importlib.import_module(f"{__package__}.{source_format}")
    converted: ConvertedWeights = module.convert(source, model)  # each converter module's convert()
    return converted


def convert_checkpoint(
    source: str | os.PathLike[str],
    source_format: str,
    model: str,
    output: str | os.PathLike[str],
    overwrite: bool = False,
) -> ConversionReport:
    """Convert ``source`` for variant ``model`` and write ``output`` (.safetensors) atomically.

    The existing output is refused unless ``overwrite``; this is checked before any work is done.
    """
    output = Path(output)
    if output.exists() and not overwrite:
        raise ConversionError(f"{output} already exists; pass --force (overwrite=True) to replace it.")
    return write_converted(load_foreign(source, source_format, model), output, overwrite=overwrite)
