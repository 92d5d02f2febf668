"""Typed errors: callers (and the CLI) can tell a user's mistake from a bug and say how to fix it."""

from __future__ import annotations


class ResNetHubError(Exception):
    """Base class of every error this package raises on purpose."""


class UnknownModelError(ResNetHubError, KeyError):
    """A model name that is not in the variant table."""

    def __init__(self, name: str, known: list[str]) -> None:
        import difflib

        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"Unknown model '{name}'.{hint} Run `resnet-hub list` to see all variants.")
        self.name = name

    def __str__(self) -> str:  # KeyError would otherwise print the repr with quotes
        return str(self.args[0])


class InputShapeError(ResNetHubError, ValueError):
    """A tensor handed to a model does not have the layout the model needs."""


class DatasetError(ResNetHubError, ValueError):
    """A data source (image folder or built-in dataset) cannot be used as given: the message says how to fix it."""


class TrainingError(ResNetHubError, ValueError):
    """Fine-tuning cannot start or went wrong (bad options, diverged loss); no output file was written."""


class EvaluationError(ResNetHubError, ValueError):
    """A model and a labelled dataset cannot be evaluated together (classes differ, unknown target)."""


class WeightsError(ResNetHubError):
    """Weights could not be read or do not fit the model; nothing was changed."""


class CorruptWeightsError(WeightsError):
    """A weights file is truncated, not safetensors, or fails its checksum."""


class IncompatibleWeightsError(WeightsError):
    """A state dict does not match the model (missing/unexpected keys, shape or architecture mismatch)."""


def install_hint(extra: str) -> str:
    """How to install an extra, in the words that work where the user is: a clone's uv environment has no pip,
    and the package installs from a clone until it is on an index."""
    return (f"Install the '{extra}' extra: in a clone `uv sync --extra {extra}` (`./dev sync` installs every "
            f"extra), from a source folder `pip install '.[{extra}]'`, from a package index "
            f"pip install 'resnet-hub[{extra}]'.")


class MissingDependencyError(ResNetHubError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the '{package}' package, which is not installed. {install_hint(extra)}")
        self.package = package
        self.extra = extra


class MetadataError(WeightsError, ValueError):
    """What weights say about themselves (config.json, safetensors metadata: preprocessing, architecture, head
    size, class names) is invalid or contradicts the tensors; refused before any model is built."""


class HubDownloadError(WeightsError):
    """Pretrained weights could not be fetched from the Hugging Face Hub (or its cache); the message says
    whether the network, the repository, or a missing safetensors file is to blame, and how to work offline."""


class ConversionError(ResNetHubError, ValueError):
    """A foreign checkpoint could not be converted: unknown layout, unknown layer names or another depth."""


class UnsafeCheckpointError(ConversionError):
    """A pickle checkpoint holds objects other than tensors (it could run code when loaded), so it was refused."""


class PublishError(ResNetHubError):
    """A Hub folder could not be written or uploaded (bad repo id, missing token, rejected upload)."""


class UnknownTagError(ResNetHubError, KeyError):
    """A ``variant.tag`` name whose tag is not in the variant table (KeyError, for older ``except KeyError``)."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr with quotes
        return str(self.args[0])


class ModelArgumentError(ResNetHubError, ValueError):
    """An argument of ``create_model`` that cannot build a model (no name, ``in_chans=0``, bad ``out_indices``)."""


class DeviceError(ResNetHubError, ValueError):
    """A ``device`` that PyTorch does not know, or that this machine does not have (``cuda`` without a GPU)."""


class OutputPathError(ResNetHubError, OSError):
    """An output location cannot be written (read-only or virtual file system, a file where a folder is needed);
    nothing was written."""


class ForeignHubModelError(UnknownModelError):
    """An ``hf-hub:`` repo whose config.json names an architecture that is not a resnet-hub variant."""

    def __init__(self, name: str, message: str) -> None:
        ResNetHubError.__init__(self, message)
        self.name = name


class WeightsChoiceError(ResNetHubError, ValueError):
    """Both a weights file and the published pretrained weights were asked for: one model has one set of weights.

    The one rule for every entry point (``create_model``, ``load_model``, export, benchmark, the CLI): call
    :meth:`check` instead of writing the test and the message again."""

    MESSAGE = ("Pass either a weights file (--weights FILE / weights=PATH) or the published weights "
               "(--pretrained / pretrained=True), not both.")

    @classmethod
    def check(cls, weights: object, pretrained: bool) -> None:
        """Raise when both ``weights`` (not None) and ``pretrained`` are given."""
        if weights is not None and pretrained:
            raise cls(cls.MESSAGE)
