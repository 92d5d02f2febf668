"""The README.md model card of a published repo: Hub YAML metadata plus how to use the weights.

The YAML is produced by ``huggingface_hub.ModelCardData`` (the Hub's own schema, including
``model-index`` for metrics) so the Hub's validator accepts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .configs import Preprocessing, VariantConfig


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


def card_metadata(info: CardInfo):
    """``huggingface_hub.ModelCardData`` for the card's YAML header."""
    from huggingface_hub import EvalResult, ModelCardData

    eval_results = None
    if info.metrics:
        dataset = info.datasets[0] if info.datasets else "unknown"
        eval_results = [
            EvalResult(task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
                       metric_type=name, metric_value=value)
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
    metrics_table = f"\n## Metrics\n\n| metric | value |\n|---|---|\n{metrics}" if metrics else ""
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

## Preprocessing

RGB input scaled to [0, 1], then normalised with mean `{tuple(round(m, 6) for m in p.mean)}` and std
`{tuple(round(s, 6) for s in p.std)}` ("{p.style}" style), {p.interpolation} resize, crop_pct {p.crop_pct},
input size {p.input_size[1]}x{p.input_size[2]}.
{metrics_table}
## Integrity

`model.safetensors` sha256: `{info.sha256}`
"""
    return f"---\n{card_metadata(info).to_yaml()}\n---\n{body}"
