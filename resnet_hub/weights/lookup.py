"""From a name the user typed to a variant of the table, Hub repos included.

The variant table (``configs``) knows nothing of the Hub; an ``hf-hub:ORG/NAME[@rev]`` name is resolved here,
one floor above both the table and ``hub``, by reading the repo's config.json (its ``architecture``).
Importing this module costs nothing (``resnet_hub.get_variant`` is imported eagerly by ``import resnet_hub``):
``hub`` -- which brings torch -- is imported only when a Hub name is looked up.
"""

from __future__ import annotations

from ..model.configs import VariantConfig, table_variant

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"  # a folder written by `resnet-hub publish` (timm's name for it)


def is_hub_name(name: object) -> bool:
    """True for ``hf-hub:ORG/NAME[@rev]`` names (a published repo rather than a row of the table)."""
    return isinstance(name, str) and name.startswith(HF_HUB_PREFIX)


def get_variant(name: str) -> VariantConfig:
    """Look a variant up by name: ``myresnet50``, ``myresnet50.tv_in1k`` (the tag must be in the table) or
    ``hf-hub:ORG/NAME[@rev]`` / ``local-dir:PATH`` (a published repo or folder: its config.json names the
    architecture; fetched once, failing fast without a network). Unknown names, tags and repos raise typed errors
    that say what exists."""
    if isinstance(name, str) and name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        from .hub import hub_variant  # local import for start-up speed only: hub imports torch

        return hub_variant(name)
    return table_variant(name)
