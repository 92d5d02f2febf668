"""The README.md model card of a published repo: Hub YAML metadata plus how to use the weights.

The YAML is produced by ``huggingface_hub.ModelCardData`` (the Hub's own schema, including
``model-index`` for metrics) so the Hub's validator accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .configs import Preprocessing, VariantConfig


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
    metrics_source: str | None = None  # a sentence for the card: how the metrics were measured


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
    """The full README.md text."""
    p = info.preprocessing
    name = info.repo_id.split("/")[-1]
    source = ""
    if info.source.get("source_format"):
        source = (f"Converted from a {info.source['source_format']} checkpoint "
                  f"(`{info.source.get('source_file', '?')}`, sha256 `{info.source.get('source_sha256', '?')}`) "
                  "with `resnet-hub convert`.\n")
    elif info.tag:
        tag = info.variant.tag(info.tag)
        source = f"Weights: {tag.description} ({tag.origin}), first published as `{tag.hf_hub_id}`.\n"
    metrics = "".join(f"| {k} | {v} |\n" for k, v in info.metrics.items())
    measured = f"\nMeasured with {info.metrics_source}.\n" if info.metrics_source else ""
    metrics_table = f"\n## Metrics\n\n| metric | value |\n|---|---|\n{metrics}{measured}" if metrics else ""
    body = f"""
# {name}

{info.variant.description} ({info.variant.name}) from [resnet-hub](https://github.com/resnet-hub/resnet-hub),
{info.num_classes} classes. {source}
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
{metrics_table}
## Integrity

`model.safetensors` sha256: `{info.sha256}`
"""
    return f"---\n{card_metadata(info).to_yaml()}\n---\n{body}"
