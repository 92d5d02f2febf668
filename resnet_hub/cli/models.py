"""``resnet-hub list`` and ``resnet-hub info``: what the variant table holds, for people and scripts."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.console import Console
from .text import plain
from rich.table import Table

# Only the variant table and precomputed counts: `list` and `info` answer without importing torch or timm.
from ..model.configs import pretrained_cfg_for, variant_names
from ..weights.lookup import get_variant
from ..zoo.stats import model_stats


def _summary(name: str, img_size: int) -> dict:
    variant = get_variant(name)
    stats = model_stats(name, img_size)
    return dict(
        name=name,
        family=variant.family,
        description=variant.description,
        params=stats.params,
        gmacs=round(stats.gmacs, 3),
        gflops=round(stats.gflops, 3),
        img_size=img_size,
        pretrained_tags=[t.tag for t in variant.pretrained],
        timm=variant.timm_name,
        torchvision=variant.torchvision_name,
        keras=variant.keras_name,
    )


def list_command(
    pattern: str = typer.Argument("*", help="Shell-style filter, e.g. 'myresnext*'."),
    img_size: int = typer.Option(224, help="Image size the GMACs are measured at (224 is precomputed; other sizes "
                                           "are measured, which takes seconds)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (the README's)."),
) -> None:
    """List the variants with parameters, compute and pretrained tags."""
    import fnmatch

    names = [n for n in variant_names() if fnmatch.fnmatch(n, pattern)]
    if not names:
        typer.secho(f"No variant matches '{pattern}'. Run `resnet-hub list` for all.", fg="red", err=True)
        raise typer.Exit(1)
    rows = [_summary(n, img_size) for n in names]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if markdown:
        typer.echo(markdown_table(rows))
        return
    table = Table(title=f"resnet-hub variants ({img_size}px)")
    table.add_column("name", no_wrap=True)
    table.add_column("params (M)", justify="right")
    table.add_column("GMACs", justify="right")
    table.add_column("pretrained tags")
    table.add_column("peer", no_wrap=True)
    for row in rows:
        peer = row["timm"] or (f"keras {row['keras']}" if row["keras"] else "")
        table.add_row(row["name"], f"{row['params'] / 1e6:.2f}", f"{row['gmacs']:.2f}",
                      ", ".join(row["pretrained_tags"]) or "-", peer)
    Console().print(table)


def markdown_table(rows: list[dict]) -> str:
    lines = [
        f"| variant | params | GMACs ({rows[0]['img_size']}px) | pretrained tags | checkpoint-compatible with |",
        "|---|---:|---:|---|---|",
    ]
    for row in rows:
        peers = ", ".join(f"{lib} `{row[lib]}`" for lib in ("timm", "torchvision", "keras") if row[lib])
        tags = ", ".join(f"`{t}`" for t in row["pretrained_tags"]) or "— (convert)"
        lines.append(f"| `{row['name']}` | {row['params'] / 1e6:.2f} M | {row['gmacs']:.2f} | {tags} | {peers} |")
    return "\n".join(lines)


def info_command(
    name: str = typer.Argument(..., help="Variant name, optionally with a tag: myresnet50.tv_in1k"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show a variant's architecture config, preprocessing and pretrained sources (also for hf-hub:ORG/NAME)."""
    from ..zoo.factory import resolve_model

    ref = resolve_model(name)  # unknown names, tags and repos: one typed error
    variant = ref.variant
    tags = [ref.tag] if ref.tag is not None else ([] if ref.hub_id else list(variant.pretrained))
    info = _summary(variant.name, 224)
    if ref.hub_id is not None:
        section = (ref.hub_config or {}).get("resnet_hub") or {}
        info["hub"] = dict(repo=ref.hub_id, num_classes=ref.num_classes, preprocessing=asdict(ref.preprocessing),
                           sha256=section.get("sha256") if isinstance(section, dict) else None)
    info["architecture"] = variant.model_args()
    info["default_preprocessing"] = asdict(variant.default_preprocessing)
    info["pretrained"] = [
        dict(tag=t.tag, hf_hub_id=t.hf_hub_id, license=t.license, origin=t.origin, description=t.description,
             preprocessing=asdict(t.preprocessing), timm_pretrained_cfg=pretrained_cfg_for(variant, t))
        for t in tags
    ]
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    console = Console()
    console.print(f"[bold]{variant.name}[/bold] — {variant.description}")
    console.print(f"params {info['params']:,}   {info['gmacs']:.2f} GMACs at 224px   family {variant.family}")
    console.print("architecture: " + ", ".join(f"{k}={v}" for k, v in info["architecture"].items()))
    peers = [f"{k}: {info[k]}" for k in ("timm", "torchvision", "keras") if info[k]]
    if peers:
        console.print("checkpoint-compatible with " + "; ".join(peers))
    if ref.hub_id is not None:
        hub = info["hub"]
        p = ref.preprocessing
        console.print(f"hf-hub repo {plain(ref.hub_id)}: {hub['num_classes']} classes, preprocessing {p.style} "
                      f"(input {p.input_size[1]}, mean {tuple(round(m, 4) for m in p.mean)}, "
                      f"std {tuple(round(s, 4) for s in p.std)})"
                      + (f", sha256 {hub['sha256']}" if hub["sha256"] else ""), highlight=False)
        return
    table = Table(title="pretrained weights")
    table.add_column("tag", no_wrap=True)
    table.add_column("hub repo", no_wrap=True)
    for column in ("input", "crop", "interp", "normalise", "license"):
        table.add_column(column)
    for t in tags:
        p = t.preprocessing
        size = f"{p.input_size[1]}" + (f" (test {p.test_input_size[1]})" if p.test_input_size else "")
        table.add_row(t.tag, t.hf_hub_id, size, f"{p.crop_pct}", p.interpolation,
                      p.style,
                      t.license)
    if tags:
        console.print(table)
    else:
        p = variant.default_preprocessing
        console.print(f"no published weights; convert with `resnet-hub convert`. Expected preprocessing: {p.style} "
                      f"(mean {tuple(round(m, 4) for m in p.mean)}, std {tuple(round(s, 4) for s in p.std)})")


def register(app: typer.Typer) -> None:
    app.command("list")(list_command)
    app.command("info")(info_command)
