"""Pictures: each is checked for existence, size and content — the numbers it shows equal what the command
measured (the confusion counts equal `evaluate --json`), and the pixels show them (cell colours from the
row-normalised counts, the curves' points where the record puts them, bars as long as the rates)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_hub.tasks.plots import (
    PlotError,
    check_plot_path,
    confusion_matrix,
    read_picture_data,
    training_curves,
)
from resnet_hub.weights.io import read_metadata
from helpers.cli import run_cli

REPO_ROOT = Path(__file__).resolve().parents[1]
C0, C1 = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's first two cycle colours


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def _check_png(path: Path, data: dict) -> np.ndarray:
    """A real PNG of the recorded size whose every data axes holds a drawing (not one flat colour)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert list(image.size) == data["size"]
        assert 300 <= image.size[0] <= 2600 and 200 <= image.size[1] <= 2600
    pixels = _rgb(path)
    for name, (x0, y0, x1, y1) in data["axes_px"].items():
        region = pixels[int(y0):int(y1), int(x0):int(x1)]
        assert region.size and region.std() > 10, f"axes '{name}' is blank"
        assert len(np.unique(region.reshape(-1, 3), axis=0)) > 8, f"axes '{name}' holds almost no drawing"
    assert path.stat().st_size < 200_000
    return pixels


def _near(pixels: np.ndarray, x: float, y: float, colour, radius: int = 4, tol: int = 40) -> bool:
    window = pixels[max(int(y) - radius, 0):int(y) + radius + 1, max(int(x) - radius, 0):int(x) + radius + 1]
    return bool((np.abs(window - np.array(colour)).max(axis=-1) <= tol).any())


def _training_record(weights: Path) -> dict:
    return json.loads(read_metadata(weights)["training"])


# --- training curves -------------------------------------------------------------------------------------------


def test_training_curves_draw_the_records_history(digits_model, tmp_path):
    record = _training_record(digits_model)
    history = record["history"]
    picture = training_curves(history, tmp_path / "curves.png", title="myresnet18 on digits")
    data = read_picture_data(picture.path)
    assert data["kind"] == "training_curves" and data["epochs"] == [h["epoch"] for h in history]
    assert data["train_loss"] == [h["train_loss"] for h in history]
    assert data["val_top1"] == [h["val_top1"] for h in history] and data["val_top1"][-1] == record["val_top1"]
    pixels = _check_png(picture.path, data)
    x0, y0, x1, y1 = data["axes_px"]["top1"]
    first, last = data["epochs"][0], data["epochs"][-1]
    span = last - first
    for epoch, top1 in zip(data["epochs"], data["val_top1"]):
        # matplotlib's default 5 % x margins; the top-1 axis is fixed at 0-100.5 %
        x = x0 + (epoch - first + 0.05 * span) / (1.1 * span) * (x1 - x0)
        y = y1 - (100 * top1 / 100.5) * (y1 - y0)
        assert _near(pixels, x, y, C1), f"no val top-1 marker at epoch {epoch} ({100 * top1:.1f} %)"
    lx0, ly0, lx1, ly1 = data["axes_px"]["loss"]
    assert _near(pixels, (lx0 + lx1) / 2, (ly0 + ly1) / 2, C0, radius=int((ly1 - ly0) / 2)), "no loss curve"


def test_finetune_writes_its_curves_beside_the_output(tmp_path):
    output = tmp_path / "digits.safetensors"
    done = run_cli("finetune", "myresnet18", "--data", "digits", "--output", str(output), "--epochs", "2",
                "--img-size", "32")
    assert done.returncode == 0, done.stderr
    curves = tmp_path / "digits.png"
    assert f"training curves: {curves}" in done.stderr.replace("\n", "")
    data = read_picture_data(curves)
    record = _training_record(output)
    assert data["epochs"] == [1, 2] and data["val_top1"] == [h["val_top1"] for h in record["history"]]
    _check_png(curves, data)
    before = curves.read_bytes()
    # a second run without --force is refused before any training, and the picture is kept
    again = run_cli("finetune", "myresnet18", "--data", "digits", "--output", str(tmp_path / "digits.safetensors"),
                 "--epochs", "1", "--img-size", "32")
    assert again.returncode != 0 and "already exists" in again.stderr and "epoch 1" not in again.stderr
    assert curves.read_bytes() == before


def test_finetune_without_the_plots_extra_still_writes_the_weights(tmp_path):
    output = tmp_path / "w.safetensors"
    done = run_cli("finetune", "myresnet18", "--data", "digits", "--output", str(output), "--epochs", "1",
                "--img-size", "32", blocked=("matplotlib",))
    assert done.returncode == 0, done.stderr
    assert output.exists() and not (tmp_path / "w.png").exists()
    assert "no training curves drawn" in done.stderr and "plots" in done.stderr and "Traceback" not in done.stderr


# --- confusion matrix ------------------------------------------------------------------------------------------


def test_evaluate_plot_counts_equal_evaluate_json(digits_model, tmp_path):
    import matplotlib

    target = tmp_path / "confusion.png"
    done = run_cli("evaluate", str(digits_model), "--data", "digits", "--json", "--plot", str(target))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout stays pure JSON
    data = read_picture_data(target)
    assert data["kind"] == "confusion_matrix"
    assert data["classes"] == [c["name"] for c in report["per_class"]] == [str(i) for i in range(10)]
    assert data["counts"] == report["confusion"]["counts"] and data["other"] == report["confusion"]["other"]
    counts = np.array(data["counts"])
    # the counts agree with the accuracies evaluate computes on its own path (hits of the top-1 per class)
    assert counts.sum() == report["n"] and np.trace(counts) / report["n"] == pytest.approx(report["top1"])
    for row, per_class in zip(counts, report["per_class"]):
        assert row.sum() == per_class["n"]
    diagonal = np.diag(counts) / counts.sum(axis=1)
    assert diagonal == pytest.approx([c["top1"] for c in report["per_class"]])
    assert data["per_class_top1"] == pytest.approx(list(diagonal))
    assert diagonal.mean() > 0.9 and counts.sum() - np.trace(counts) > 0  # a model that learned, with mistakes

    pixels = _check_png(target, data)
    x0, y0, x1, y1 = data["axes_px"]["matrix"]
    rows, columns = counts.shape[0], data["columns"]
    cell_w, cell_h = (x1 - x0) / columns, (y1 - y0) / rows
    blues = matplotlib.colormaps["Blues"]
    shares = counts / counts.sum(axis=1, keepdims=True)
    for (row, col), share in np.ndenumerate(shares):
        # a corner of the cell, away from the count written in its middle
        x, y = x0 + (col + 0.2) * cell_w, y0 + (row + 0.2) * cell_h
        expected = np.array(blues(share)[:3]) * 255
        assert np.abs(pixels[int(y), int(x)] - expected).max() <= 12, f"cell ({row}, {col}) has the wrong colour"


def test_confusion_matrix_draws_hostile_class_names_literally(tmp_path):
    names = ["$\\frac{", "a\nb", "<img src=x onerror=alert(1)>", "x" * 200, "```"]
    counts = [[3, 1, 0, 0, 0], [0, 4, 0, 0, 0], [1, 0, 2, 0, 0], [0, 0, 0, 5, 0], [0, 0, 0, 0, 1]]
    picture = confusion_matrix(names, counts, tmp_path / "m.png", other=[0, 0, 0, 0, 2])
    data = read_picture_data(picture.path)
    assert data["classes"] == names and data["counts"] == counts and data["other"] == [0, 0, 0, 0, 2]
    assert data["columns"] == 6  # the 'other' column: predictions of classes the data does not have
    assert data["per_class_top1"] == pytest.approx([0.75, 1.0, 2 / 3, 1.0, 1 / 3])
    _check_png(picture.path, data)


# --- benchmark -------------------------------------------------------------------------------------------------


def test_benchmark_plot_shows_rates_against_the_measured_ceiling(tmp_path):
    target = tmp_path / "bench.png"
    done = run_cli("benchmark", "myresnet18", "--backends", "torch", "--img-size", "32", "--batch-size", "2",
                "--iters", "3", "--warmup", "1", "--threads", "1", "--json", "--plot", str(target))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    data = read_picture_data(target)
    ran = [r for r in report["results"] if r["available"]]
    assert data["backends"] == [r["backend"] for r in ran] == ["timm", "torch"]
    assert data["img_per_s"] == pytest.approx([r["throughput"] for r in ran])
    fp32 = report["ceilings"]["fp32"]
    assert fp32["source"] == "measured"
    assert data["ceiling_img_per_s"]["fp32"] == pytest.approx(fp32["gops"] / report["gflops_per_image"])
    pixels = _check_png(target, data)
    x0, y0, x1, y1 = data["axes_px"]["rates"]
    row_h = (y1 - y0) / len(ran)
    for i, rate in enumerate(data["img_per_s"]):
        end = x0 + rate / data["xlim"][1] * (x1 - x0)
        y = y0 + (i + 0.5) * row_h
        assert _near(pixels, (x0 + end) / 2, y, C0, radius=1, tol=8), f"no bar for {data['backends'][i]}"
        assert end > x0 + 2
    ceiling_x = x0 + data["ceiling_img_per_s"]["fp32"] / data["xlim"][1] * (x1 - x0)
    column = pixels[int(y0) + 2:int(y1) - 2, int(ceiling_x) - 1:int(ceiling_x) + 2]
    assert (np.abs(column - np.array(C0)).max(axis=-1) <= 8).any(axis=1).mean() > 0.3, "no ceiling line"


# --- refusals --------------------------------------------------------------------------------------------------


def test_plot_paths_are_checked_before_the_work(tmp_path):
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"keep")
    with pytest.raises(PlotError, match="already exists"):
        check_plot_path(existing)
    with pytest.raises(PlotError, match=r"\.png"):
        check_plot_path(tmp_path / "picture.jpg")
    with pytest.raises(PlotError, match="already exists"):
        training_curves([dict(epoch=1, train_loss=1.0, train_top1=0.5, val_top1=0.5)], existing)
    assert existing.read_bytes() == b"keep"
    assert check_plot_path(existing, overwrite=True) == existing
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_plot_options_name_the_extra_when_matplotlib_is_missing(tmp_path):
    for args in (("evaluate", "myresnet18", "--data", "digits", "--plot", str(tmp_path / "e.png")),
                 ("benchmark", "myresnet18", "--img-size", "32", "--iters", "1", "--plot", str(tmp_path / "b.png"))):
        done = run_cli(*args, blocked=("matplotlib",))
        assert done.returncode == 1, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "plots" in lines[0] and "matplotlib" in lines[0], done.stderr
    assert not list(tmp_path.iterdir())
