"""Publish weights to the Hugging Face Hub as a repo timm can load: ``hf-hub:ORG/NAME`` (after
``import resnet_hub``) and ``local-dir:`` both work on what :func:`build_hub_folder` writes.

A repo holds ``model.safetensors`` (never pickle), a timm ``config.json`` whose ``resnet_hub.sha256``
lets every later load verify the weights, and a README.md model card. Weights are checked before
anything is written: they must load strictly into the named variant.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from . import plots
from .._version import __version__
from ..model.configs import Preprocessing, PretrainedTag, VariantConfig
from ..errors import MissingDependencyError, PublishError
from ..weights.hub import CONFIG_FILENAME, CONFIG_SECTION, WEIGHTS_FILENAME, check_repo_id
from ..weights.lookup import get_variant
from ..weights.metadata_checks import preprocessing_from_record
from .model_card import (
    CONFUSION_MATRIX_FILENAME,
    TRAINING_CURVES_FILENAME,
    CardInfo,
    check_license,
    md_text,
    render_model_card,
)
from ..zoo.registry import pretrained_cfg_for
from ..weights.io import atomic_write, check_architecture, load_weights, sha256_of_file

if TYPE_CHECKING:
    from .evaluate import Evaluation

_PRETRAINED_CFG_FIELDS: frozenset[str] | None = None
README_FILENAME = "README.md"


@dataclass(frozen=True)
class HubFolder:
    """A folder ready to upload."""

    path: Path
    repo_id: str
    architecture: str
    sha256: str
    config: dict[str, Any]
    files: tuple[str, ...] = (WEIGHTS_FILENAME, CONFIG_FILENAME, README_FILENAME)  # what is uploaded
    notes: tuple[str, ...] = ()  # what the folder lacks and why (e.g. no pictures without the plots extra)


@dataclass(frozen=True)
class PublishResult:
    folder: HubFolder
    uploaded: bool
    revision: str | None = None
    commit_sha: str | None = None
    commit_url: str | None = None
    repo_url: str | None = None


def read_label_file(path: str | os.PathLike[str]) -> list[str]:
    """Class names, one per line (blank lines ignored), or a PublishError saying why the file cannot be used."""
    from ..weights.io import check_regular_file

    path = Path(path)
    check_regular_file(path, PublishError, what="Labels file",
                       folder_hint=f"{path} is a folder; --labels takes a text file with one class name per line.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PublishError(f"{path} is not UTF-8 text ({exc.reason}); --labels takes a text file with one class "
                           "name per line.") from None
    except OSError as exc:
        raise PublishError(f"Labels file {path} cannot be read ({exc.strerror or exc}).") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise PublishError(f"{path} holds no class names; write one name per line.")
    return labels


def build_hub_folder(
    name: str,
    weights: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    repo_id: str,
    license: str | None = None,
    datasets: Sequence[str] = (),
    metrics: Mapping[str, float] | None = None,
    label_names: Sequence[str] | None = None,
    overwrite: bool = False,
    eval_data: str | os.PathLike[str] | None = None,
) -> HubFolder:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` for ``name`` (``variant[.tag]``).

    The card's ``model-index`` carries measured accuracy: evaluated on ``eval_data`` when given, else the
    validation accuracy that ``resnet-hub finetune`` recorded in the weights; ``metrics`` given by hand win.
    The card also says what the training record holds, and shows pictures the Hub renders (with the ``plots``
    extra): ``training_curves.png`` from the record's epochs, ``confusion_matrix.png`` from ``eval_data``.
    """
    from ..weights.converters.common import fit_model

    check_repo_id(repo_id, "the repo to publish to (ORG/NAME, e.g. my-org/myresnet50-cats)", error=PublishError)
    try:
        license = check_license(license)
    except ValueError as exc:
        raise PublishError(str(exc)) from None
    variant = get_variant(name)
    try:
        tag = variant.tag(name.split(".", 1)[1]) if "." in name else None
    except KeyError as exc:
        raise PublishError(str(exc.args[0])) from None
    state_dict, metadata = load_weights(weights)
    check_architecture(metadata, variant.name, weights)
    model = fit_model(state_dict, variant, str(weights))
    num_classes, num_features = model.num_classes, model.num_features
    del state_dict, model
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise PublishError(f"{out_dir} is not empty; choose another folder or pass --force (overwrite=True).")

    preprocessing = _preprocessing(metadata, tag, variant)
    if label_names is None:
        from ..zoo.model_loading import label_names_from_metadata

        recorded = label_names_from_metadata(metadata)  # fine-tuned weights name their classes
        label_names = recorded if recorded is not None and len(recorded) == num_classes else None
    labels = _label_names(num_classes, datasets, label_names)
    measured = _measured_accuracy(weights, metadata, eval_data)
    target = out_dir / WEIGHTS_FILENAME
    atomic_write(target, lambda tmp: shutil.copyfile(weights, tmp), overwrite=True)
    sha256 = sha256_of_file(target)
    source: dict[str, str] = {k: metadata[k] for k in ("source_format", "source_file", "source_sha256")
                              if k in metadata}
    config = _timm_config(variant, tag, preprocessing, num_classes, num_features, labels, sha256, source)
    _write_text(out_dir / CONFIG_FILENAME, json.dumps(config, indent=2) + "\n")
    training = _training_record(metadata)
    pictures, notes = _draw_pictures(out_dir, repo_id, training, measured.evaluation if measured else None)
    card = CardInfo(
        repo_id=repo_id, variant=variant, preprocessing=preprocessing, num_classes=num_classes, sha256=sha256,
        license=license or (tag.license if tag else None),
        datasets=tuple(datasets) or (("imagenet-1k",) if tag else ()),
        metrics={**(measured.metrics if measured else {}), **dict(metrics or {})}, source=source,
        tag=tag.tag if tag else None, eval_dataset=measured.dataset if measured else None,
        eval_split=measured.split if measured else None, metrics_source=measured.source if measured else None,
        label_names=tuple(labels.get("label_names") or ()), training=training, pictures=pictures,
    )
    _write_text(out_dir / README_FILENAME, render_model_card(card))
    return HubFolder(path=out_dir, repo_id=repo_id, architecture=variant.name, sha256=sha256, config=config,
                     files=(WEIGHTS_FILENAME, CONFIG_FILENAME, README_FILENAME, *pictures), notes=notes)


def upload_folder(
    folder: HubFolder,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> PublishResult:
    """Create the repo (if needed) and upload the folder in one commit; returns the commit sha."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token)
    try:
        repo_url = api.create_repo(folder.repo_id, private=private or None, exist_ok=True)  # None: org default
        if revision and revision != "main":
            api.create_branch(folder.repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            repo_id=folder.repo_id,
            folder_path=folder.path,
            allow_patterns=list(folder.files),
            revision=revision,
            commit_message=commit_message or f"Upload {folder.architecture} weights (sha256 {folder.sha256[:12]})",
        )
    except HfHubHTTPError as exc:
        raise PublishError(f"Upload to {folder.repo_id} failed: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # no token (ValueError/OSError), unreachable endpoint (the HTTP client's own errors)
        raise PublishError(
            f"Upload to {folder.repo_id} failed ({type(exc).__name__}: {exc}). Log in with `hf auth login` or set "
            "HF_TOKEN, and check the network; --dry-run DIR writes the folder without uploading."
        ) from exc
    return PublishResult(folder=folder, uploaded=True, revision=revision, commit_sha=commit.oid,
                         commit_url=commit.commit_url, repo_url=str(repo_url))


def publish(
    name: str,
    weights: str | os.PathLike[str],
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    dry_run_dir: str | os.PathLike[str] | None = None,
    license: str | None = None,
    datasets: Sequence[str] = (),
    metrics: Mapping[str, float] | None = None,
    label_names: Sequence[str] | None = None,
    eval_data: str | os.PathLike[str] | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    overwrite: bool = False,
) -> PublishResult:
    """Build the Hub folder and upload it; with ``dry_run_dir`` only write the folder there."""
    card_args: dict[str, Any] = dict(license=license, datasets=datasets, metrics=metrics, label_names=label_names,
                     eval_data=eval_data)
    if dry_run_dir is not None:
        folder = build_hub_folder(name, weights, dry_run_dir, repo_id, overwrite=overwrite, **card_args)
        return PublishResult(folder=folder, uploaded=False, revision=revision)
    with tempfile.TemporaryDirectory(prefix="resnet-hub-publish-") as tmp:
        folder = build_hub_folder(name, weights, tmp, repo_id, **card_args)
        return upload_folder(folder, private=private, revision=revision, token=token, endpoint=endpoint)


@dataclass(frozen=True)
class MeasuredAccuracy:
    metrics: dict[str, float]  # top1 / top5 in percent, as model cards state them
    dataset: str
    split: str
    source: str  # how it was measured: a Markdown sentence for the card, user text escaped
    evaluation: Evaluation | None = None  # when measured here (its confusion counts become a picture)


def _measured_accuracy(weights: str | os.PathLike[str], metadata: Mapping[str, str],
                       eval_data: str | os.PathLike[str] | None) -> MeasuredAccuracy | None:
    if eval_data is not None:
        from ..errors import DatasetError, EvaluationError
        from .evaluate import evaluate

        try:
            result = evaluate(str(weights), eval_data)
        except (DatasetError, EvaluationError) as exc:
            raise PublishError(f"--eval-data {eval_data}: {exc}") from exc
        return MeasuredAccuracy(metrics={"top1": round(100 * result.top1, 2), "top5": round(100 * result.top5, 2)},
                                dataset=Path(str(result.data["source"])).name or str(result.data["source"]),
                                split=str(result.data["split"]).split(" ", 1)[0],
                                source=f"`resnet-hub evaluate` on {result.n} images of "
                                       f"{md_text(result.data['source'])} ({md_text(result.data['split'])})",
                                evaluation=result)
    record = _training_record(metadata)
    if record is None:
        return None
    try:
        data = record["data"]["val"]
        metrics = {"top1": round(100 * float(record["val_top1"]), 2), "top5": round(100 * float(record["val_top5"]), 2)}
    except (ValueError, KeyError, TypeError):
        return None
    run = record.get("run")
    if not isinstance(run, dict):
        run = {}
    how = ""
    if run.get("world_size") and run.get("engine"):  # how the fine-tune ran (resnet_hub.tasks.train's run record)
        speed = f", {run['throughput_img_s']} img/s" if run.get("throughput_img_s") else ""
        how = (f"; trained on {run['world_size']} process(es) ({run['engine']}, {run.get('device', '?')}{speed}, "
               f"{run.get('wall_seconds', '?')} s wall time)")
    return MeasuredAccuracy(metrics=metrics, dataset=Path(str(data["source"])).name or str(data["source"]),
                            split="validation", source=f"`resnet-hub finetune`'s validation split "
                                                      f"({md_text(data.get('n'))} images of {md_text(data['source'])},"
                                                      f" {md_text(data.get('split'))}){how}")


def _training_record(metadata: Mapping[str, str]) -> dict[str, Any] | None:
    """The record ``resnet-hub finetune`` stores in the weights (JSON), or None when absent or unreadable."""
    raw = metadata.get("training")
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _draw_pictures(out_dir: Path, repo_id: str, training: Mapping[str, Any] | None,
                   evaluation: Evaluation | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The card's pictures: training curves from the record's epochs, the confusion matrix of ``evaluation``.
    Returns (file names written, notes on what is missing); without the plots extra the card has no pictures
    and a note says which extra draws them."""
    history = training.get("history") if training else None
    confusion = getattr(evaluation, "confusion", None)
    wanted = [name for name, present in ((TRAINING_CURVES_FILENAME, bool(history)),
                                         (CONFUSION_MATRIX_FILENAME, confusion is not None)) if present]
    if not wanted:
        return (), ()
    try:
        plots.require_matplotlib("The model card's pictures")
    except MissingDependencyError as exc:
        return (), (f"the card has no pictures: {exc}",)
    notes = []
    if TRAINING_CURVES_FILENAME in wanted:
        try:
            plots.training_curves(history or (), out_dir / TRAINING_CURVES_FILENAME, title=repo_id, overwrite=True)
        except (KeyError, TypeError, ValueError) as exc:  # a record from another version: the card goes without
            wanted.remove(TRAINING_CURVES_FILENAME)
            notes.append(f"the training record's epochs cannot be drawn ({type(exc).__name__}: {exc})")
    if CONFUSION_MATRIX_FILENAME in wanted and evaluation is not None:  # (wanted only with an evaluation)
        plots.evaluation_picture(evaluation, out_dir / CONFUSION_MATRIX_FILENAME, overwrite=True)
    return tuple(wanted), tuple(notes)


def _preprocessing(metadata: Mapping[str, str], tag: PretrainedTag | None, variant: VariantConfig) -> Preprocessing:
    """The weights' own record (converted files) wins over the table's tag, then the variant default."""
    recorded = metadata.get("preprocessing")
    if recorded:
        return preprocessing_from_record(recorded, "the weights' recorded preprocessing")  # never NaN into config
    return tag.preprocessing if tag else variant.default_preprocessing


def _label_names(num_classes: int, datasets: Sequence[str], label_names: Sequence[str] | None) -> dict[str, Any]:
    if label_names is not None:
        if len(label_names) != num_classes:
            raise PublishError(f"{len(label_names)} label names given for {num_classes} classes.")
        return dict(label_names=list(label_names))
    if num_classes == 1000 and (not datasets or "imagenet-1k" in datasets):
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        names = info.label_names()
        return dict(label_names=names, label_descriptions=dict(zip(names, info.label_descriptions())))
    return {}


def _timm_config(variant: VariantConfig, tag: PretrainedTag | None, preprocessing: Preprocessing, num_classes: int,
                 num_features: int, labels: dict[str, Any], sha256: str, source: Mapping[str, str]) -> dict[str, Any]:
    """timm's hub config.json (``architecture`` + ``pretrained_cfg``) plus our ``resnet_hub`` section."""
    pretrained_cfg = pretrained_cfg_for(variant, tag)
    pretrained_cfg.update(preprocessing.to_timm(), num_classes=num_classes)
    pretrained_cfg.pop("hf_hub_id", None)  # timm fills it from the name it was loaded by
    if tag is not None:
        pretrained_cfg["tag"] = tag.tag
    pretrained_cfg = {k: v for k, v in pretrained_cfg.items() if k in _pretrained_cfg_fields()}
    return dict(
        architecture=variant.name,
        num_classes=num_classes,
        num_features=num_features,
        global_pool="avg",
        **labels,
        pretrained_cfg=json.loads(json.dumps(pretrained_cfg)),
        **{CONFIG_SECTION: dict(weights_file=WEIGHTS_FILENAME, sha256=sha256, version=__version__,
                                preprocessing=asdict(preprocessing), **({"source": source} if source else {}))},
    )


def _pretrained_cfg_fields() -> frozenset[str]:
    """timm refuses unknown pretrained_cfg keys, so only its own fields are written."""
    global _PRETRAINED_CFG_FIELDS
    if _PRETRAINED_CFG_FIELDS is None:
        import dataclasses

        from timm.models import PretrainedCfg

        _PRETRAINED_CFG_FIELDS = frozenset(f.name for f in dataclasses.fields(PretrainedCfg))
    return _PRETRAINED_CFG_FIELDS


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), overwrite=True)
