"""The package version, in one place: pyproject.toml reads it for the distribution metadata, and
``resnet_hub.__version__`` / ``resnet-hub --version`` re-export it, so the three can never disagree."""

__version__ = "0.2.0"
