"""Pretrained weights from the Hugging Face Hub: safetensors only, verified, and fast to fail.

timm's own hub loader falls back to ``pytorch_model.bin`` (pickle) and, with no network, retries for
~23 s before giving up. Every pretrained load of our variants goes through :func:`prepare_pretrained`
instead, which downloads exactly ``model.safetensors`` with ``huggingface_hub`` and hands timm a local
``file`` to load, so timm's ``num_classes`` / ``in_chans`` adaptation and checkpoint filter still apply.

Where weights come from can be changed without code: ``hub_org=`` / ``RESNET_HUB_ORG`` point the table's
tags at a mirror organisation and ``hub_revision=`` / ``RESNET_HUB_REVISION`` pin a branch, tag or commit.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model.configs import VariantConfig
from ..errors import CorruptWeightsError, HubDownloadError, ResNetHubError, WeightsError
from .metadata_checks import check_hub_config
from .io import PICKLE_SUFFIXES, check_architecture, check_weight_values, read_metadata, verify_sha256

ENV_ORG = "RESNET_HUB_ORG"
ENV_REVISION = "RESNET_HUB_REVISION"
WEIGHTS_FILENAME = "model.safetensors"
CONFIG_FILENAME = "config.json"
# Our section of a repo's config.json (timm ignores unknown top-level keys).
CONFIG_SECTION = "resnet_hub"
HUB_ARG_NAMES = ("hub_org", "hub_revision")
# One HEAD request decides between "download", "use the cache" and "fail with advice"; huggingface_hub's
# own retry loop is only entered once the Hub has answered.
PROBE_TIMEOUT_S = 5.0
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class HubWeights:
    """A verified local copy of a repo's ``model.safetensors``."""

    path: Path
    repo_id: str
    revision: str | None
    sha256: str | None  # the checksum it was verified against, when one was known

    @property
    def hub_id(self) -> str:
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id


def pop_hub_args(model_args: dict[str, Any]) -> dict[str, Any]:
    """Remove our hub keyword arguments from model kwargs (the model classes do not take them)."""
    return {name: model_args.pop(name) for name in HUB_ARG_NAMES if name in model_args}


def resolve_repo_id(hf_hub_id: str, org: str | None = None) -> str:
    """``timm/resnet50.a1_in1k`` with ``org='mirror'`` -> ``mirror/resnet50.a1_in1k``."""
    given = org
    org = org or os.environ.get(ENV_ORG) or None
    if not org:
        return hf_hub_id
    repo_id = f"{org.strip('/')}/{hf_hub_id.split('/', 1)[-1]}"
    origin = "hub_org=" if given else f"${ENV_ORG}"
    check_repo_id(repo_id, f"the mirror organisation {org!r} (from {origin})")
    return repo_id


def check_repo_id(repo_id: str, origin: str = "the model name",
                  error: type[ResNetHubError] = HubDownloadError) -> str:
    """Refuse a repo id the Hub cannot have before any request (huggingface_hub's own HFValidationError
    would otherwise surface as a traceback). The one check for downloads and publishing alike; ``error`` is the
    operation's error type (``PublishError`` for publish)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        if not isinstance(repo_id, str):
            raise HFValidationError(f"expected a string, got {type(repo_id).__name__}")
        validate_repo_id(repo_id)
        if repo_id.count("/") != 1:
            raise HFValidationError("a model repo id is ORG/NAME")
    except HFValidationError as exc:
        raise error(
            f"'{repo_id}' is not a valid Hub repo id (ORG/NAME of letters, digits, '-', '_', '.'); check "
            f"{origin}. ({str(exc).splitlines()[0]})"
        ) from None
    return repo_id


def resolve_revision(revision: str | None = None) -> str | None:
    return revision or os.environ.get(ENV_REVISION) or None


def split_hub_id(hub_id: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``)."""
    repo_id, _, revision = hub_id.partition("@")
    return repo_id, revision or None


def prepare_pretrained(
    variant: VariantConfig, model_args: dict[str, Any], pretrained: bool = True
) -> dict[str, Any]:
    """Called by ``registry.build_variant``: strips hub arguments and, when ``pretrained``, fetches the
    weights and returns model args whose ``pretrained_cfg_overlay`` points timm's loader at the local file."""
    from timm.models import resolve_pretrained_cfg

    hub_args = pop_hub_args(model_args)
    if not pretrained:
        return model_args
    overlay = dict(model_args.get("pretrained_cfg_overlay") or {})
    cfg = resolve_pretrained_cfg(
        variant.name, pretrained_cfg=model_args.get("pretrained_cfg"), pretrained_cfg_overlay=overlay
    ).to_dict()
    source = cfg.get("source") or ""
    if cfg.get("state_dict") is not None or (cfg.get("file") and source != "local-dir"):
        return model_args  # the caller handed timm the weights directly
    if source == "local-dir":
        path, expected = _local_dir_weights(Path(cfg["file"]))
        overlay.update(file=str(path), source="")
    elif cfg.get("hf_hub_id"):
        if source == "hf-hub":  # `hf-hub:org/name[@rev]`: the user named the repo, so no org override
            repo_id, revision = split_hub_id(cfg["hf_hub_id"])
            revision = revision or hub_args.get("hub_revision")
        else:
            repo_id = resolve_repo_id(split_hub_id(cfg["hf_hub_id"])[0], hub_args.get("hub_org"))
            revision = resolve_revision(hub_args.get("hub_revision"))
        weights = download_weights(repo_id, revision)
        path = weights.path
        overlay.update(file=str(path), source="", hf_hub_id=weights.hub_id)
    else:
        raise WeightsError(
            f"{variant.name} has no published pretrained weights. Convert a checkpoint with "
            "`resnet-hub convert` and load it with weights=PATH (CLI: --weights PATH)."
        )
    check_architecture(read_metadata(path), variant.name, path)
    check_file_values(path)
    model_args = dict(model_args)
    model_args["pretrained_cfg_overlay"] = overlay
    return model_args


def check_file_values(path: str | os.PathLike[str]) -> None:
    """timm loads pretrained files itself (``load_state_dict`` casts integers and copies NaN silently), so the
    tensors' types and values are checked here first, one tensor at a time."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        check_weight_values(((key, handle.get_tensor(key)) for key in handle.keys()), str(path),
                            model_name="the pretrained model")


def download_weights(repo_id: str, revision: str | None = None, expected_sha256: str | None = None) -> HubWeights:
    """Fetch ``model.safetensors`` of a Hub repo (never a pickle) and verify it.

    The checksum is, in order: ``expected_sha256``, the ``resnet_hub.sha256`` that ``resnet-hub publish``
    recorded in the repo's config.json, or the LFS sha256 the cache names the blob after.
    """
    path = fetch_file(repo_id, WEIGHTS_FILENAME, revision, required=True)
    assert path is not None
    if expected_sha256 is None:
        expected_sha256 = _published_sha256(repo_id, revision)
    if expected_sha256 is None:
        expected_sha256 = _blob_sha256(path)
    if expected_sha256 is None:
        expected_sha256 = _cached_tree_sha256(repo_id, WEIGHTS_FILENAME, revision) or _hub_etag_sha256(
            repo_id, WEIGHTS_FILENAME, revision)
    _check_complete(path)
    if expected_sha256 is None:
        raise CorruptWeightsError(
            f"{path} cannot be verified: it is a plain file in the Hugging Face cache (not a blob named by its "
            f"sha256), {repo_id} records no sha256 in its config.json, and the Hub could not be asked for its "
            "checksum (offline). Connect once so the Hub's checksum can be checked, or delete the cached file and "
            "download it again, or pass a local file you trust: weights=PATH (CLI: --weights PATH)."
        )
    verify_sha256(path, expected_sha256, hint=f"re-download it from {repo_id}")
    return HubWeights(path=path, repo_id=repo_id, revision=revision, sha256=expected_sha256)


def fetch_file(repo_id: str, filename: str, revision: str | None = None, required: bool = True) -> Path | None:
    """One file of a repo through ``huggingface_hub`` and its cache, failing fast and clearly.

    Offline (``HF_HUB_OFFLINE=1``) it reads the cache only. Online, one short HEAD request decides: the
    Hub answered -> normal download; the Hub is unreachable -> the cached copy or one clear error.
    ``required=False`` returns None for a file the repo does not have.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    check_repo_id(repo_id)
    where = f"{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    if constants.is_offline_mode():
        try:
            return Path(hf_hub_download(repo_id, filename, revision=revision))
        except (LocalEntryNotFoundError, EntryNotFoundError):
            if not required:
                return None
            raise HubDownloadError(
                f"HF_HUB_OFFLINE is set and {where} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}). "
                "Download it once with network access (or copy a populated cache there), or pass a local file: "
                "weights=PATH (CLI: --weights PATH)."
            ) from None
    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=PROBE_TIMEOUT_S)
    except GatedRepoError as exc:
        raise HubDownloadError(f"{repo_id} is gated: accept its terms on the Hub and log in (HF_TOKEN).") from exc
    except RepositoryNotFoundError as exc:
        raise HubDownloadError(
            f"Repository {repo_id} was not found on {constants.ENDPOINT} (or it is private: set HF_TOKEN). "
            f"Check the name, or the mirror organisation given by hub_org= / ${ENV_ORG}."
        ) from exc
    except RevisionNotFoundError as exc:
        raise HubDownloadError(
            f"Revision '{revision}' does not exist in {repo_id}; check hub_revision= / ${ENV_REVISION}."
        ) from exc
    except EntryNotFoundError as exc:
        if not required:
            return None
        raise HubDownloadError(
            f"{repo_id} has no {filename}. resnet-hub only loads safetensors (a pickle checkpoint can run code); "
            f"convert the checkpoint with `resnet-hub convert` and pass weights=PATH (CLI: --weights PATH)."
        ) from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status is not None and status < 500 and status != 429:
            raise HubDownloadError(f"The Hub refused {where}: {exc}") from exc
        return _cached_or_fail(repo_id, filename, revision, where, exc, required)
    except Exception as exc:  # transport errors (DNS, refused, timeout) come from the HTTP client, not OSError
        return _cached_or_fail(repo_id, filename, revision, where, exc, required)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except EntryNotFoundError:
        if not required:
            return None
        raise


def _cached_or_fail(repo_id: str, filename: str, revision: str | None, where: str, exc: Exception,
                    required: bool) -> Path | None:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True))
    except EntryNotFoundError:
        if not required:
            return None
    raise HubDownloadError(
        f"Cannot reach the Hugging Face Hub ({constants.ENDPOINT}: {type(exc).__name__}) to download {where}, "
        f"and it is not in the cache ({constants.HF_HUB_CACHE}). To work offline set HF_HUB_OFFLINE=1 with a "
        "populated cache, or pass a local safetensors file: weights=PATH (CLI: --weights PATH)."
    ) from exc


def prefetch_hub_config(model_name: str) -> Path | None:
    """For an ``hf-hub:org/name[@rev]`` model name, fetch its config.json through :func:`fetch_file` so the
    lookup timm then makes is a cache hit (fast and clear when the network is down)."""
    if not model_name.startswith("hf-hub:"):
        return None
    repo_id, revision = split_hub_id(model_name[len("hf-hub:"):])
    return fetch_file(repo_id, CONFIG_FILENAME, revision, required=True)


LOCAL_DIR_PREFIX = "local-dir:"


def hub_model_config(model_name: str) -> dict[str, Any]:
    """The config.json of an ``hf-hub:org/name[@rev]`` model (fetched once per process, failing fast) or of a
    ``local-dir:PATH`` folder, checked (:func:`metadata_checks.check_hub_config`) against the weights when they
    are at hand."""
    if model_name.startswith(LOCAL_DIR_PREFIX):
        return local_dir_config(model_name[len(LOCAL_DIR_PREFIX):])
    return copy.deepcopy(_hub_model_config(model_name))


@functools.lru_cache(maxsize=64)
def _hub_model_config(model_name: str) -> dict[str, Any]:
    path = prefetch_hub_config(model_name)
    if path is None:
        raise ValueError(f"{model_name} is not an hf-hub: name")
    config = read_hub_config(path)
    check_hub_config(config, f"{model_name} config.json", weights=_cached_weights(model_name))
    return config


def local_dir_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``local-dir:`` folder's config.json, checked against the folder's model.safetensors."""
    folder = Path(folder)
    path = folder / CONFIG_FILENAME
    if not path.is_file():
        raise WeightsError(f"{folder} has no {CONFIG_FILENAME}: a local-dir: model is a folder written by "
                           "`resnet-hub publish --dry-run` (or timm's save_for_hf).")
    config = read_hub_config(path)
    check_hub_config(config, str(path), weights=folder / WEIGHTS_FILENAME)
    return config


def _cached_weights(model_name: str) -> str | None:
    """The repo's model.safetensors if the Hugging Face cache already holds it (never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        repo_id, revision = split_hub_id(model_name[len("hf-hub:"):])
        found = try_to_load_from_cache(repo_id, WEIGHTS_FILENAME, revision=revision)
    except Exception:  # an unusual cache layout: the weights are checked when they are loaded
        return None
    return found if isinstance(found, str) else None


def hub_variant(model_name: str) -> VariantConfig:
    """The variant an ``hf-hub:`` repo holds, from its config.json ``architecture`` (what timm builds)."""
    from ..model.configs import VARIANTS
    from ..errors import ForeignHubModelError

    config = hub_model_config(model_name)
    architecture = str(config.get("architecture") or "")
    base = architecture.split(".", 1)[0]
    if base in VARIANTS:
        return VARIANTS[base]
    peer = next((v for v in VARIANTS.values() if base and v.timm_name == base), None)
    hint = (f" Its weights fit {peer.name}: use {peer.name} (with --pretrained for the table's tags) or convert "
            "the file with `resnet-hub convert --from timm`." if peer else " Run `resnet-hub list` for the variants.")
    raise ForeignHubModelError(model_name, f"{model_name} holds a '{architecture or '?'}' model, not a resnet-hub "
                                           f"variant.{hint}")


_TIMM_SEAM_ATTR = "_resnet_hub_fast_fail"


def install_timm_hub_seam() -> None:
    """Make ``timm.create_model('hf-hub:ORG/NAME')`` fetch its config.json through :func:`fetch_file`.

    timm resolves an ``hf-hub:`` name in ``timm.models._factory.load_model_config_from_hf`` with a plain
    ``hf_hub_download``, which with no network and no offline flag retries for ~25 s and ends in a generic
    ``LocalEntryNotFoundError``. Routing that one call through our single 5-second probe keeps the README's
    promise on every path (the weights themselves already come through :func:`prepare_pretrained`). If timm
    changes these internals the seam is simply not installed and timm's own behaviour remains.

    The same seam checks the config.json of ``hf-hub:`` and ``local-dir:`` names (and the weights' header where
    the file is at hand) before timm builds anything: a hostile record is one :class:`MetadataError` line.
    """
    try:
        from timm.models import _factory
        from timm.models import _hub as timm_hub
    except ImportError:
        return
    original = getattr(_factory, "load_model_config_from_hf", None)
    parse = getattr(timm_hub, "_parse_model_cfg", None)
    load_json = getattr(timm_hub, "load_cfg_from_json", None)
    if original is None or parse is None or load_json is None or getattr(original, _TIMM_SEAM_ATTR, False):
        return

    def load_model_config_from_hf(model_id: str, cache_dir: Any = None, **kwargs: Any) -> Any:  # timm's result
        if cache_dir is not None or kwargs:  # a caller-chosen cache: timm's own download handles it
            return original(model_id, cache_dir=cache_dir, **kwargs)
        path = prefetch_hub_config(f"hf-hub:{model_id}")
        config = load_json(path)
        check_hub_config(config, f"hf-hub:{model_id} config.json", weights=_cached_weights(f"hf-hub:{model_id}"))
        return parse(config, {"hf_hub_id": model_id, "source": "hf-hub"})

    setattr(load_model_config_from_hf, _TIMM_SEAM_ATTR, True)
    load_model_config_from_hf.__wrapped__ = original  # type: ignore[attr-defined]
    _factory.load_model_config_from_hf = load_model_config_from_hf
    original_path = getattr(_factory, "load_model_config_from_path", None)
    if original_path is not None and not getattr(original_path, _TIMM_SEAM_ATTR, False):

        def load_model_config_from_path(model_path: Any, *args: Any, **kwargs: Any) -> Any:  # timm's result
            """``local-dir:`` names: the folder's config.json is checked against its weights first."""
            if (Path(model_path) / CONFIG_FILENAME).is_file():
                local_dir_config(model_path)
            return original_path(model_path, *args, **kwargs)

        setattr(load_model_config_from_path, _TIMM_SEAM_ATTR, True)
        load_model_config_from_path.__wrapped__ = original_path  # type: ignore[attr-defined]
        _factory.load_model_config_from_path = load_model_config_from_path


def read_hub_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            config: dict[str, Any] = json.load(handle)  # checked by the callers (metadata_checks.check_hub_config)
            return config
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path} is not a readable config.json ({exc})") from exc


def published_sha256(config: dict[str, Any]) -> str | None:
    """The weights checksum ``resnet-hub publish`` records in config.json, if any."""
    section = config.get(CONFIG_SECTION) or {}
    value = section.get("sha256") if isinstance(section, dict) else None
    return value.lower() if isinstance(value, str) and _SHA256_RE.match(value.lower()) else None


def _published_sha256(repo_id: str, revision: str | None) -> str | None:
    config_path = fetch_file(repo_id, CONFIG_FILENAME, revision, required=False)
    return published_sha256(read_hub_config(config_path)) if config_path else None


def _blob_sha256(path: Path) -> str | None:
    """The cache stores LFS files as ``blobs/<sha256>``: a free checksum for files we did not publish."""
    if not path.is_symlink():
        return None
    name = Path(os.path.realpath(path)).name
    return name if _SHA256_RE.match(name) else None


def _cached_tree_sha256(repo_id: str, filename: str, revision: str | None) -> str | None:
    """The LFS sha256 from the tree listing ``snapshot_download`` caches beside the files (no network)."""
    try:
        from huggingface_hub import get_cached_repo_tree

        files = get_cached_repo_tree(repo_id, revision=revision)
    except Exception:  # no listing cached (the common case), or an older huggingface_hub without the function
        return None
    for entry in files:
        lfs = getattr(entry, "lfs", None)
        if entry.path == filename and lfs is not None:
            value = str(lfs.sha256).lower()
            return value if _SHA256_RE.match(value) else None
    return None


def _hub_etag_sha256(repo_id: str, filename: str, revision: str | None) -> str | None:
    """The Hub's ETag of an LFS file is its sha256: one short HEAD request, skipped when offline."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    if constants.is_offline_mode():
        return None
    try:
        metadata = get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=PROBE_TIMEOUT_S)
    except Exception:  # unreachable: the caller reports that nothing could vouch for the file
        return None
    value = (metadata.etag or "").strip('"').lower()
    return value if _SHA256_RE.match(value) else None


def _local_dir_weights(folder: Path) -> tuple[Path, str | None]:
    """``local-dir:`` loading: the folder's model.safetensors, verified against its config.json."""
    path = folder / WEIGHTS_FILENAME
    if not path.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES) if folder.is_dir() else []
        extra = (f" It holds {', '.join(pickles)}, which resnet-hub does not load because pickle can run code; "
                 "convert it with `resnet-hub convert`.") if pickles else ""
        raise WeightsError(f"{folder} has no {WEIGHTS_FILENAME}.{extra}")
    config = folder / CONFIG_FILENAME
    expected = published_sha256(read_hub_config(config)) if config.is_file() else None
    _check_complete(path)
    if expected:
        verify_sha256(path, expected, hint=f"publish {folder} again")
    return path, expected




def _check_complete(path: str | os.PathLike[str]) -> None:
    """A safetensors header declares every tensor's byte range: a shorter file was cut off mid-download."""
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as handle:
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len > size:
                raise ValueError("header longer than the file")
            header = json.loads(handle.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptWeightsError(f"{path} is not a readable safetensors file ({exc}); download it again.") from exc
    if 8 + header_len + end != size:
        raise CorruptWeightsError(
            f"{path} is {size} bytes but its header describes {8 + header_len + end}: the file is truncated or "
            "padded (an interrupted download?). Delete it and download it again."
        )
