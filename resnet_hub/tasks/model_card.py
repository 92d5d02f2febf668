"""The README.md model card of a published repo: Hub YAML metadata plus how to use the weights.

The YAML is produced by ``huggingface_hub.ModelCardData`` (the Hub's own schema, including
``model-index`` for metrics) so the Hub's validator accepts it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..model.configs import Preprocessing, VariantConfig

# Pictures publish uploads beside README.md; the card references them by these relative paths (the Hub renders
# relative image links against the repo's files).
TRAINING_CURVES_FILENAME = "training_curves.png"
CONFUSION_MATRIX_FILENAME = "confusion_matrix.png"
MAX_LISTED_CLASSES = 20
_REPOSITORY_FALLBACK = "https://github.com/resnet-hub/resnet-hub"  # pyproject's [project.urls] Repository
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~])")  # what means something inside a line (+ HTML's < > &)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def md_text(value: Any) -> str:
    """``value`` as literal Markdown text inside a line (a table cell, a heading, mid-sentence), whatever it holds.

    Folder names, class names and metric names come from users (and from anyone who hands them a folder): a
    ``` fence in one swallowed the rest of a card, and ``<img onerror=...>`` went out as live HTML. The
    punctuation that means something inside a line is backslash-escaped (code spans, emphasis, links and images,
    ``|`` table cells, strike-through), ``& < >`` become HTML entities, and line breaks and control characters
    are shown as ``\\n``-style escapes, so no name can end its line and start a block of its own.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))
    return html.escape(_MARKDOWN_PUNCTUATION.sub(r"\\\1", text), quote=False)


def md_code(value: Any) -> str:
    """``value`` as an inline code span: a backtick fence longer than any backtick run inside (CommonMark), control
    characters shown escaped. Nothing in a code span is read as Markdown or HTML (not for table cells: GFM splits
    cells at ``|`` even there)."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def repository_url() -> str:
    """The project's repository, as the installed package's metadata records it (pyproject.toml's
    ``[project.urls] Repository``): the card links where the code really is."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("resnet-hub").get_all("Project-URL") or []
    except PackageNotFoundError:  # imported from a source tree that was never installed
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    return _REPOSITORY_FALLBACK


# The license identifiers the Hub accepts in a card's ``license:`` field, in the Hub's order. Source: the table
# "License identifier (to use in repo card)" of https://huggingface.co/docs/hub/repositories-licenses
# (huggingface/hub-docs, docs/hub/repositories-licenses.md at commit 008d54d08fd9d5d05ed2840bebb0b61111326a15).
# huggingface_hub ships no copy of this list. With ``other`` the Hub expects license_name / license_link too.
HUB_LICENSES: tuple[str, ...] = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc",
    "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa",
    "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "gemma", "unknown", "other",
)


def check_license(license: str | None) -> str | None:
    """The Hub's identifier for ``license`` (case-insensitive), or ValueError naming the closest ones."""
    if license is None:
        return None
    normalised = license.strip().lower()
    if normalised in HUB_LICENSES:
        return normalised
    import difflib

    close = difflib.get_close_matches(normalised, HUB_LICENSES, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"'{license}' is not a Hub license identifier.{hint} Use one of the identifiers listed at "
        "https://huggingface.co/docs/hub/repositories-licenses (e.g. apache-2.0, mit, bsd-3-clause, cc-by-4.0), "
        "or 'other'."
    )


@dataclass(frozen=True)
class CardInfo:
    """Facts the card states; everything optional is left out of the YAML when unknown."""

    repo_id: str
    variant: VariantConfig
    preprocessing: Preprocessing
    num_classes: int
    sha256: str
    license: str | None = None
    datasets: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    source: Mapping[str, str] = field(default_factory=dict)
    tag: str | None = None
    eval_dataset: str | None = None  # where measured metrics come from (else the first training dataset)
    eval_split: str | None = None
    metrics_source: str | None = None  # a Markdown sentence for the card (user text in it escaped): how measured
    label_names: tuple[str, ...] = ()
    training: Mapping[str, Any] | None = None  # the training record ``resnet-hub finetune`` stores in the weights
    pictures: tuple[str, ...] = ()  # picture files written beside README.md (the *_FILENAME constants)


def card_metadata(info: CardInfo):
    """``huggingface_hub.ModelCardData`` for the card's YAML header."""
    from huggingface_hub import EvalResult, ModelCardData

    eval_results = None
    if info.metrics:
        dataset = info.eval_dataset or (info.datasets[0] if info.datasets else "unknown")
        eval_results = [
            EvalResult(task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
                       dataset_split=info.eval_split, metric_type=name, metric_value=value,
                       verified=False)
            for name, value in info.metrics.items()
        ]
    return ModelCardData(
        library_name="timm",
        license=info.license,
        tags=["image-classification", "timm", "resnet-hub", info.variant.family],
        datasets=list(info.datasets) or None,
        metrics=list(info.metrics) or None,
        pipeline_tag="image-classification",
        model_name=info.repo_id.split("/")[-1] if eval_results else None,
        eval_results=eval_results,
    )


def render_model_card(info: CardInfo) -> str:
    """The full README.md text: every user-given string escaped (:func:`md_text`), one blank line between blocks."""
    p = info.preprocessing
    name = info.repo_id.split("/")[-1]
    source = ""
    if info.source.get("source_format"):
        source = (f" Converted from a {md_text(info.source['source_format'])} checkpoint "
                  f"({md_code(info.source.get('source_file', '?'))}, sha256 "
                  f"{md_code(info.source.get('source_sha256', '?'))}) with `resnet-hub convert`.")
    elif info.tag:
        tag = info.variant.tag(info.tag)
        source = f" Weights: {tag.description} ({tag.origin}), first published as `{tag.hf_hub_id}`."
    intro = (f"{info.variant.description} ({info.variant.name}) from [resnet-hub]({repository_url()}),\n"
             f"{_classes(info)}.{source}")
    sections = "".join(f"\n## {title}\n\n{text.strip()}\n" for title, text in (
        ("Training", _training_section(info)), ("Metrics", _metrics_section(info))) if text)
    body = f"""
# {md_text(name)}

{intro}

## Use

```python
import resnet_hub  # registers the architecture with timm
import timm

model = timm.create_model("hf-hub:{info.repo_id}", pretrained=True).eval()
config = timm.data.resolve_data_config({{}}, model=model)
transform = timm.data.create_transform(**config)
```

`resnet_hub.create_model("hf-hub:{info.repo_id}", pretrained=True)` does the same. Only `model.safetensors`
is downloaded; its sha256 is checked against `config.json`.

With 🤗 transformers (`pip install resnet-hub transformers`; no `import resnet_hub` needed, the package's
start-up hook registers the architecture with timm):

```python
from transformers import pipeline

classifier = pipeline("image-classification", model="{info.repo_id}")
classifier("image.jpg")
```

`AutoModelForImageClassification` / `AutoImageProcessor` load it too, with the preprocessing below.

## Preprocessing

RGB input scaled to [0, 1], then normalised with mean `{tuple(round(m, 6) for m in p.mean)}` and std
`{tuple(round(s, 6) for s in p.std)}` ("{p.style}" style), {p.interpolation} resize, crop_pct {p.crop_pct},
input size {p.input_size[1]}x{p.input_size[2]}.
{sections}
## Integrity

`model.safetensors` sha256: `{info.sha256}`
"""
    return f"---\n{card_metadata(info).to_yaml()}\n---\n{body}"


def _classes(info: CardInfo) -> str:
    names = info.label_names
    if not names or len(names) != info.num_classes or info.num_classes > 100:
        return f"{info.num_classes} classes"
    listed = ", ".join(md_text(n) for n in names[:MAX_LISTED_CLASSES])
    more = f" and {len(names) - MAX_LISTED_CLASSES} more" if len(names) > MAX_LISTED_CLASSES else ""
    return f"{info.num_classes} classes: {listed}{more}"


def _training_section(info: CardInfo) -> str:
    """What the training record holds: the data (source, split, image count), epochs, input size and recipe."""
    record = info.training
    if not record:
        return ""
    options = record.get("options") or {}
    base = str(record.get("base_weights") or "random-init")
    start = "random initialisation" if base == "random-init" else md_code(base)
    recipe = ", ".join(f"{label} {md_text(options[key])}" for key, label in (
        ("opt", "optimizer"), ("lr", "peak learning rate"), ("batch_size", "batch size"),
        ("weight_decay", "weight decay"), ("seed", "seed")) if key in options)
    lines = [f"Fine-tuned with `resnet-hub finetune` from {start}: {md_text(record.get('epochs', '?'))} epochs at "
             f"{md_text(record.get('img_size', '?'))}x{md_text(record.get('img_size', '?'))} px"
             + (f" ({recipe})" if recipe else "") + (f" on {md_text(record['device'])}" if record.get("device") else "")
             + "."]
    data = record.get("data") or {}
    rows = [(label, data[key]) for key, label in (("train", "training"), ("val", "validation"))
            if isinstance(data.get(key), Mapping)]
    if rows:
        lines += ["", "| data | source | split | images |", "|---|---|---|---|"]
        lines += [f"| {label} | {md_text(d.get('source', '?'))} | {md_text(d.get('split', '?'))} | "
                  f"{md_text(d.get('n', '?'))} |" for label, d in rows]
    try:
        lines += ["", f"Validation top-1 {100 * float(record['val_top1']):.2f} %, top-5 "
                      f"{100 * float(record['val_top5']):.2f} % after the last epoch."]
    except (KeyError, TypeError, ValueError):
        pass
    if TRAINING_CURVES_FILENAME in info.pictures:
        lines += ["", f"![Loss and top-1 accuracy per epoch]({TRAINING_CURVES_FILENAME})"]
    return "\n".join(lines)


def _metrics_section(info: CardInfo) -> str:
    if not info.metrics:
        return ""
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {md_text(k)} | {md_text(v)} |" for k, v in info.metrics.items()]
    if info.metrics_source:
        lines += ["", f"Measured with {info.metrics_source}."]
    if CONFUSION_MATRIX_FILENAME in info.pictures:
        lines += ["", f"![Confusion matrix and per-class accuracy]({CONFUSION_MATRIX_FILENAME})"]
    return "\n".join(lines)
