"""The model card's body: hostile folder, class and metric names stay literal text (a CommonMark + GFM-table
parser, markdown-it-py, is the oracle), the training record is stated with proper block spacing, the pictures it
shows are files beside README.md that the upload carries, and its repository link is the project's."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from markdown_it import MarkdownIt
from PIL import Image

from resnet_hub.weights.lookup import get_variant
from resnet_hub.tasks.evaluate import evaluate
from resnet_hub.tasks.model_card import (
    CONFUSION_MATRIX_FILENAME,
    TRAINING_CURVES_FILENAME,
    CardInfo,
    md_code,
    md_text,
    render_model_card,
    repository_url,
)
from resnet_hub.tasks.plots import read_picture_data
from resnet_hub.tasks.publish import build_hub_folder, publish
from resnet_hub.weights.io import read_metadata

REPO_ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ["```", "<img src=x onerror=alert(1)>", "a|b", "line\nbreak", "*bold* _it_ [link](http://x)", "# head",
           "&lt;", "\x1b[31mred", "`code`", "\\"]


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _body(card: str) -> str:
    return card.split("\n---\n", 1)[1]


def _tokens(card: str):
    for token in _parser().parse(_body(card)):
        yield token
        yield from token.children or ()


def _headings(card: str) -> list[str]:
    tokens = _parser().parse(_body(card))
    return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]


def _table_rows(card: str, header: str) -> list[list[str]]:
    """The rendered text of each body row's cells in the table whose first header cell is ``header``."""
    tokens = _parser().parse(_body(card))
    rows, row, in_table = [], None, False
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            in_table = next(t for t in tokens[i:] if t.type == "inline").content == header
        if not in_table:
            continue
        if token.type == "tr_open":
            row = []
        elif token.type == "inline":
            row.append("".join(c.content for c in token.children if c.type in ("text", "code_inline")))
        elif token.type == "tr_close":
            rows.append(row)
        elif token.type == "table_close":
            in_table = False
    return rows[1:]  # without the header row


def _check_inert(card: str) -> str:
    """No raw HTML anywhere, only the Use section's two fenced blocks (timm, transformers), and every <img> the
    rendered HTML has is one of the card's own pictures. Returns the HTML."""
    types = [t.type for t in _tokens(card)]
    assert "html_block" not in types and "html_inline" not in types
    assert [t.info for t in _tokens(card) if t.type == "fence"] == ["python", "python"]
    rendered = _parser().render(_body(card))
    for tag in re.findall(r"<img[^>]*>", rendered):
        assert re.search(rf'src="({TRAINING_CURVES_FILENAME}|{CONFUSION_MATRIX_FILENAME})"', tag), tag
    return rendered


def _check_spacing(card: str) -> None:
    """A blank line around every heading, table, fenced block and picture; no runs of blank lines; no trailing
    spaces."""
    body = _body(card).strip("\n")
    assert "\n\n\n" not in body
    lines = body.split("\n")
    assert not [line for line in lines if line != line.rstrip()]
    blocks, i = [], 0  # (first line, last line) of each block that needs blank lines around it
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            close = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append((i, close))
            i = close
        elif line.startswith("|"):
            last = i
            while last + 1 < len(lines) and lines[last + 1].startswith("|"):
                last += 1
            blocks.append((i, last))
            i = last
        elif line.startswith(("#", "![")):
            blocks.append((i, i))
        i += 1
    for first, last in blocks:
        assert first == 0 or lines[first - 1] == "", f"no blank line before {lines[first]!r}"
        assert last + 1 == len(lines) or lines[last + 1] == "", f"no blank line after {lines[last]!r}"


def test_md_text_and_md_code_render_any_string_literally():
    parser = _parser()
    for value in HOSTILE + ["".join(HOSTILE)]:
        expected = value.replace("\n", "\\n").replace("\x1b", "\\x1b")
        tokens = parser.parse(f"before {md_text(value)} after")
        assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
        text = "".join(c.content for c in tokens[1].children)
        assert text == f"before {expected} after", value
        code = [c for c in parser.parse(f"x {md_code(value)} y")[1].children if c.type == "code_inline"]
        assert len(code) == 1 and code[0].content.strip() == expected.strip(), value


def _hostile_info(**extra) -> CardInfo:
    variant = get_variant("myresnet18")
    record = dict(data=dict(train=dict(source="/data/" + HOSTILE[0] + HOSTILE[1], split="train", n=8),
                            val=dict(source="x|y\n# not a heading", split="val ```", n=2)),
                  base_weights="/w/<img src=x onerror=alert(2)>.safetensors", epochs=3, img_size=32,
                  options=dict(opt="sgd", lr=0.05, batch_size=4, weight_decay=0.0005, seed=0), device="cpu",
                  val_top1=0.5, val_top5=1.0, history=[])
    return CardInfo(repo_id="me/card", variant=variant, preprocessing=variant.default_preprocessing,
                    num_classes=len(HOSTILE), sha256="ab" * 32, metrics={name: float(i) for i, name in
                                                                         enumerate(HOSTILE)},
                    label_names=tuple(HOSTILE), training=record, **extra)


def test_hostile_names_stay_text_and_every_section_survives():
    card = render_model_card(_hostile_info())
    assert _headings(card) == ["card", "Use", "Preprocessing", "Training", "Metrics", "Integrity"]
    rendered = _check_inert(card)
    assert "onerror" in rendered and "&lt;img src=x onerror=alert(1)&gt;" in rendered
    metrics = _table_rows(card, "metric")
    expected = [name.replace("\n", "\\n").replace("\x1b", "\\x1b") for name in HOSTILE]
    assert [row[0] for row in metrics] == expected  # one row per metric, the pipe inside a name included
    assert all(len(row) == 2 for row in metrics)
    data = _table_rows(card, "data")
    assert data[0][1] == "/data/```<img src=x onerror=alert(1)>" and data[1][1] == "x|y\\n# not a heading"
    assert "ab" * 32 in card.split("## Integrity", 1)[1]
    _check_spacing(card)


def test_the_card_links_the_projects_repository():
    urls = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert repository_url() == urls["Repository"]
    card = render_model_card(_hostile_info())
    links = [t.attrs["href"] for t in _tokens(card) if t.type == "link_open"]
    assert links == [urls["Repository"]]


# --- on the trained digits model -------------------------------------------------------------------------------


def test_card_states_the_training_record_and_shows_both_pictures(digits_model, tmp_path):
    record = json.loads(read_metadata(digits_model)["training"])
    folder = build_hub_folder("myresnet18", digits_model, tmp_path / "hub", "me/digits", eval_data="digits")
    assert folder.files == ("model.safetensors", "config.json", "README.md", TRAINING_CURVES_FILENAME,
                            CONFUSION_MATRIX_FILENAME)
    assert folder.notes == ()
    card = (folder.path / "README.md").read_text()
    _check_inert(card)
    _check_spacing(card)
    assert _headings(card) == ["digits", "Use", "Preprocessing", "Training", "Metrics", "Integrity"]
    assert f"{record['epochs']} epochs at {record['img_size']}x{record['img_size']} px" in card
    assert "10 classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9." in card
    rows = _table_rows(card, "data")
    assert rows == [["training", "digits", record["data"]["train"]["split"], str(record["data"]["train"]["n"])],
                    ["validation", "digits", record["data"]["val"]["split"], str(record["data"]["val"]["n"])]]
    pictures = [t.attrs["src"] for t in _tokens(card) if t.type == "image"]
    assert pictures == [TRAINING_CURVES_FILENAME, CONFUSION_MATRIX_FILENAME]
    for name in pictures:
        with Image.open(folder.path / name) as image:
            assert image.format == "PNG" and image.size[0] >= 400
    curves = read_picture_data(folder.path / TRAINING_CURVES_FILENAME)
    assert curves["val_top1"] == [h["val_top1"] for h in record["history"]]
    confusion = read_picture_data(folder.path / CONFUSION_MATRIX_FILENAME)
    expected = evaluate(str(digits_model), "digits")
    assert confusion["counts"] == expected.confusion.counts
    assert np.trace(np.array(confusion["counts"])) / expected.n == pytest.approx(expected.top1)


def test_upload_carries_the_pictures_the_card_references(digits_model, hub_double):
    result = publish("myresnet18", digits_model, "me/digits-up", token="hf_x", endpoint=hub_double.url)
    files = hub_double.repos["me/digits-up"].files
    assert sorted(files) == sorted(["README.md", "config.json", "model.safetensors", TRAINING_CURVES_FILENAME])
    card = files["README.md"].decode()
    assert [t.attrs["src"] for t in _tokens(card) if t.type == "image"] == [TRAINING_CURVES_FILENAME]
    assert files[TRAINING_CURVES_FILENAME][:8] == b"\x89PNG\r\n\x1a\n"
    assert result.folder.files[-1] == TRAINING_CURVES_FILENAME


def test_without_the_plots_extra_the_card_says_nothing_of_pictures(digits_model, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "hub"
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['matplotlib'] = None\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(shim), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "resnet_hub", "publish", "myresnet18", "--weights", str(digits_model),
                           "--repo-id", "me/digits", "--dry-run", str(out)], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "no pictures" in done.stderr and "plots" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (out / "README.md").read_text()
    assert "![" not in card and "## Training" in card
    _check_spacing(card)


def test_a_model_trained_and_evaluated_on_hostile_folders_publishes_an_inert_card(tmp_path):
    """End to end: class folders and a data folder named to break Markdown, fine-tuned for real, evaluated on
    the same folder for the card, metric names given by hand: the card keeps every section, renders no HTML."""
    from sklearn.datasets import load_digits

    from resnet_hub.tasks.train import FinetuneOptions, finetune

    classes = ["```", "<img src=x onerror=alert(1)>"]
    data = tmp_path / "data ``` <img src=x onerror=alert(3)> |x|\nline"
    digits = load_digits()
    for index, name in enumerate(classes):
        folder = data / name
        folder.mkdir(parents=True)
        for k, image in enumerate(digits.images[digits.target == index][:6]):
            Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).resize((32, 32)).save(folder / f"{k}.png")
    weights = tmp_path / "hostile.safetensors"
    finetune("myresnet18", data, weights, options=FinetuneOptions(epochs=1, img_size=32, batch_size=4,
                                                                  val_split=0.5))
    metrics = {"top|1\n```": 1.0, "<img src=x onerror=alert(4)>": 2.0}
    folder = build_hub_folder("myresnet18", weights, tmp_path / "hub", "me/hostile", eval_data=data, metrics=metrics)
    card = (folder.path / "README.md").read_text()
    assert _headings(card) == ["hostile", "Use", "Preprocessing", "Training", "Metrics", "Integrity"]
    rendered = _check_inert(card)
    for number in (1, 3, 4):
        assert f"&lt;img src=x onerror=alert({number})&gt;" in rendered
    assert [row[0] for row in _table_rows(card, "metric")][-2:] == ["top|1\\n```", "<img src=x onerror=alert(4)>"]
    sources = [row[1] for row in _table_rows(card, "data")]
    assert sources == [str(data).replace("\n", "\\n")] * 2
    assert folder.sha256 in card.split("## Integrity", 1)[1]
    _check_spacing(card)
