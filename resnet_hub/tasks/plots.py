"""Pictures of what the commands measure: training curves, the confusion matrix with per-class accuracy, and
benchmark rates against the machine's measured ceilings.

A picture is read faster than a table when the question is a shape (did the loss flatten, which digits are
confused, how far below the ceiling a backend runs). Each function:

- draws with matplotlib's Agg backend on a ``Figure`` of its own (no display or GUI toolkit needed, and no
  pyplot global state, so repeated calls in one process leak nothing), from plain numbers;
- writes the PNG atomically (nothing half-written) and refuses to replace an existing file unless
  ``overwrite`` (``finetune --force``; ``--plot F.png`` refuses an existing F before any work), like every other
  output of resnet-hub;
- embeds the numbers it drew as JSON in the PNG's ``resnet-hub`` text chunk, together with where the data
  axes sit in the image, so the picture can be checked against its numbers without reading pixels by eye:
  ``json.loads(PIL.Image.open(path).text["resnet-hub"])``.

matplotlib is an optional dependency (the ``plots`` extra); without it every function raises
:class:`~resnet_hub.errors.MissingDependencyError` naming the extra. Library code only: nothing is printed.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import MissingDependencyError, ResNetHubError

if TYPE_CHECKING:  # annotations only: the benchmark module imports torch at import time
    from .benchmark import BenchmarkReport
    from .evaluate import Evaluation

PLOTS_EXTRA = "plots"
METADATA_KEY = "resnet-hub"  # the PNG text chunk holding what was drawn
DPI = 100
MAX_ANNOTATED_CLASSES = 30  # more classes: cells without count text (it would not fit)
MAX_LABELLED_CLASSES = 60  # more classes: no class names on the axes
MAX_LABEL_CHARS = 24
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class PlotError(ResNetHubError, ValueError):
    """A picture cannot be written where asked (not a .png path, an existing file without --force)."""


def require_matplotlib(purpose: str = "Drawing pictures") -> None:
    """Fail early, before any long work, when the ``plots`` extra is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", PLOTS_EXTRA, purpose) from exc


def check_plot_path(path: str | os.PathLike, *, overwrite: bool = False, purpose: str = "Drawing pictures") -> Path:
    """The checks a command runs before its work starts: matplotlib installed, a ``.png`` path, not an existing
    file (unless ``overwrite``), not a folder. Returns the path."""
    require_matplotlib(purpose)
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise PlotError(f"{path}: pictures are written as PNG; give a path ending in .png")
    if path.is_dir():
        raise PlotError(f"{path} is a folder; give a file path ending in .png")
    if path.exists() and not overwrite:
        raise PlotError(f"{path} already exists; choose another path, or remove it first to draw it again")
    return path


@dataclass(frozen=True)
class Picture:
    """A written picture and the numbers it shows (also embedded in the PNG)."""

    path: Path
    data: dict[str, Any]


# --- training curves -------------------------------------------------------------------------------------------


def training_curves(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    overwrite: bool = False,
) -> Picture:
    """Loss and top-1 per epoch from a training record's ``history`` (``resnet-hub finetune``'s epochs: dicts
    or :class:`~resnet_hub.tasks.train.EpochRecord` with ``epoch``, ``train_loss``, ``train_top1``, ``val_top1``)."""
    rows = [_as_mapping(h) for h in history]
    if not rows:
        raise PlotError("The training record holds no epochs to draw")
    epochs = [int(r["epoch"]) for r in rows]
    series = {key: [float(r[key]) for r in rows] for key in ("train_loss", "train_top1", "val_top1")}
    fig = _figure(9.0, 3.6)
    loss_ax, top1_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, series["train_loss"], marker="o", color="C0", label="train loss")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    loss_ax.set_ylim(bottom=0)
    top1_ax.plot(epochs, [100 * v for v in series["train_top1"]], marker="o", color="C0", label="train top-1")
    top1_ax.plot(epochs, [100 * v for v in series["val_top1"]], marker="s", color="C1", label="val top-1")
    top1_ax.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="Top-1 accuracy", ylim=(0, 100.5))
    for ax in (loss_ax, top1_ax):
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(_text(title, 90))
    data = dict(kind="training_curves", epochs=epochs, **series)
    return _save(fig, path, data, {"loss": loss_ax, "top1": top1_ax}, overwrite)


# --- confusion matrix ------------------------------------------------------------------------------------------


def confusion_matrix(
    classes: Sequence[str],
    counts: Sequence[Sequence[int]],
    path: str | os.PathLike,
    *,
    other: Sequence[int] | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Picture:
    """The confusion matrix (true class per row, predicted class per column, the count in each cell, colours
    normalised per row so a rare class reads as clearly as a common one) beside per-class top-1 accuracy.

    ``other``: per true class, predictions of model classes the data does not have (an extra column when any).
    """
    import numpy as np

    n = len(classes)
    matrix = np.asarray(counts, dtype=np.int64).reshape(n, n) if n else np.zeros((0, 0), dtype=np.int64)
    if n == 0:
        raise PlotError("No classes to draw")
    extra = np.asarray(other if other is not None else [0] * n, dtype=np.int64).reshape(n, 1)
    with_other = bool(extra.any())
    shown = np.concatenate([matrix, extra], axis=1) if with_other else matrix
    totals = shown.sum(axis=1)
    normalised = shown / np.maximum(totals, 1)[:, None]
    accuracy = np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), 0.0)

    names = [_text(c, MAX_LABEL_CHARS) for c in classes]
    columns = names + (["other"] if with_other else [])
    labelled = n <= MAX_LABELLED_CLASSES
    label_in = 0.3 + 0.075 * max(len(c) for c in columns) if labelled else 0.3  # room for the tick labels
    side = min(max(3.0, 0.45 * len(columns)), 20.0)
    fig = _figure(label_in + side + 1.2 + 3.0, label_in + side + 1.0)
    matrix_ax, bars_ax = fig.subplots(1, 2, width_ratios=[side + 1.0, 3.0])
    fig.get_layout_engine().set(wspace=0.06)
    image = matrix_ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    fig.colorbar(image, ax=matrix_ax, fraction=0.046, pad=0.02, label="share of the true class")
    if labelled:
        rotate = len(columns) > 10 or max(len(c) for c in columns) > 3
        matrix_ax.set_xticks(range(len(columns)), columns, rotation=90 if rotate else 0)
        matrix_ax.set_yticks(range(n), names)
    else:
        matrix_ax.set_xticks([])
        matrix_ax.set_yticks([])
    if n <= MAX_ANNOTATED_CLASSES:
        for (row, col), value in np.ndenumerate(shown):
            if value:
                matrix_ax.text(col, row, str(int(value)), ha="center", va="center", fontsize=8,
                               color="white" if normalised[row, col] > 0.5 else "black")
    matrix_ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (counts)")

    positions = np.arange(n)
    bars_ax.barh(positions, 100 * accuracy, color="C0")
    bars_ax.set_ylim(n - 0.5, -0.5)  # the same row order as the matrix
    bars_ax.set_xlim(0, 100)
    bars_ax.set_yticks(positions, [""] * n)  # the rows of the matrix beside it, in the same order
    bars_ax.set(xlabel="top-1 (%)", title="Per-class accuracy")
    bars_ax.grid(axis="x", alpha=0.3)
    if n <= MAX_ANNOTATED_CLASSES:
        for row, value in enumerate(accuracy):
            inside = value > 0.6  # the label inside a long bar, after a short one
            bars_ax.text(100 * value + (-1 if inside else 1), row, f"{100 * value:.0f}% of {int(totals[row])}",
                         va="center", ha="right" if inside else "left", fontsize=7,
                         color="white" if inside else "black")
    if title:
        fig.suptitle(_text(title, 100))
    data = dict(kind="confusion_matrix", classes=list(classes), counts=matrix.tolist(), other=extra[:, 0].tolist(),
                per_class_top1=accuracy.tolist(), columns=len(columns))
    return _save(fig, path, data, {"matrix": matrix_ax, "accuracy": bars_ax}, overwrite)


def evaluation_picture(
    evaluation: "Evaluation",
    path: str | os.PathLike,
    *,
    title: str | None = None,
    overwrite: bool = False,
) -> Picture:
    """:func:`confusion_matrix` of an :class:`~resnet_hub.tasks.evaluate.Evaluation` (``evaluate --plot``)."""
    if evaluation.confusion is None:
        raise PlotError("This evaluation carries no confusion counts to draw")
    split = str(evaluation.data.get("split", "")).split(" ", 1)[0]
    default = (f"top-1 {100 * evaluation.top1:.2f}% on {evaluation.n} images of {evaluation.data.get('source')} "
               f"({split}): {evaluation.target}")
    return confusion_matrix([c.name for c in evaluation.per_class], evaluation.confusion.counts, path,
                            other=evaluation.confusion.other, title=title or default, overwrite=overwrite)


# --- benchmark -------------------------------------------------------------------------------------------------


def benchmark_rates(
    report: "BenchmarkReport",
    path: str | os.PathLike,
    *,
    title: str | None = None,
    overwrite: bool = False,
) -> Picture:
    """Images per second of each backend that ran, with the rate its arithmetic's measured GEMM ceiling would
    allow (ceiling GOP/s / GOP per image) drawn as a line: how far each runtime is from this machine's limit."""
    rows = [r for r in report.results if r.available and r.throughput]
    if not rows:
        raise PlotError("No backend ran, so there are no rates to draw")
    per_image = float(report.gflops_per_image)
    ceilings = {name: float(c.gops) / per_image for name, c in report.ceilings.items() if per_image > 0}
    labels = [_text(r.backend + (" (baseline)" if r.is_baseline else ""), 40) for r in rows]
    rates = [float(r.throughput or 0.0) for r in rows]  # rows all have a throughput (filtered above)
    fig = _figure(8.0, max(2.8, 0.55 * len(rows) + 2.1))
    ax = fig.subplots()
    colours = {"fp32": "C0", "int8": "C2"}
    positions = list(range(len(rows)))
    ax.barh(positions, rates, color=[colours.get(r.arithmetic, "C7") for r in rows])
    for position, r, rate in zip(positions, rows, rates):
        share = f", {100 * r.ceiling_fraction:.0f}% of {r.arithmetic} ceiling" if r.ceiling_fraction else ""
        ax.text(rate, position, f" {rate:.1f} img/s{share}", va="center", fontsize=8)
    for name, rate in ceilings.items():
        ax.axvline(rate, color=colours.get(name, "C3"), linestyle="--", linewidth=1.5,
                   label=f"{name} GEMM ceiling: {rate:.0f} img/s ({report.ceilings[name].gops:.0f} GOP/s)")
    ax.set_yticks(positions, labels)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    xlim = (0.0, 1.35 * max(rates + list(ceilings.values())))  # room for the labels after the longest bar
    ax.set_xlim(*xlim)
    ax.set(xlabel="images per second (higher is better)")
    ax.grid(axis="x", alpha=0.3)
    if ceilings:
        fig.legend(loc="outside lower center", ncols=len(ceilings), fontsize=8, frameon=False)
    load = (getattr(report, "environment", None) or {}).get("load_average")
    fig.suptitle(_text(title or f"{report.model}: batch {report.batch_size}, {report.img_size}px, {report.device}, "
                                f"{report.threads} threads" + (f", load average {load} at start" if load else ""), 110))
    data = dict(kind="benchmark", backends=[r.backend for r in rows], img_per_s=rates,
                arithmetic=[r.arithmetic for r in rows], ceiling_img_per_s=ceilings,
                gflops_per_image=per_image, xlim=list(xlim))
    return _save(fig, path, data, {"rates": ax}, overwrite)


# --- shared ----------------------------------------------------------------------------------------------------


def read_picture_data(path: str | os.PathLike) -> dict[str, Any]:
    """The numbers a picture of this module shows (its embedded ``resnet-hub`` text chunk)."""
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", {}) or {}
        raw = text.get(METADATA_KEY)
    if raw is None:
        raise PlotError(f"{path} is not a picture written by resnet-hub (no '{METADATA_KEY}' text chunk)")
    return json.loads(raw)


def _figure(width: float, height: float):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas (no pyplot, no display): its draw() lays the figure out for real
    return fig


def _save(fig, path: str | os.PathLike, data: dict[str, Any], axes: Mapping[str, Any], overwrite: bool) -> Picture:
    """Lay the figure out, record where each data axes sits in the image (pixels, origin top-left), and write the
    PNG atomically with the numbers embedded."""
    from PIL.PngImagePlugin import PngInfo

    from .._version import __version__
    from ..weights.io import atomic_write

    fig.canvas.draw()  # runs the constrained layout ...
    fig.set_layout_engine("none")  # ... and freezes it: savefig draws the axes where they are recorded below
    width, height = fig.canvas.get_width_height()
    boxes = {}
    for name, ax in axes.items():
        box = ax.get_window_extent()
        boxes[name] = [round(float(v), 1) for v in (box.x0, height - box.y1, box.x1, height - box.y0)]
    data = dict(data, size=[width, height], axes_px=boxes)
    info = PngInfo()
    info.add_text("Software", f"resnet-hub {__version__} (matplotlib)")
    info.add_itxt(METADATA_KEY, json.dumps(_json_safe(data), ensure_ascii=True, allow_nan=False), zip=True)
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, pil_kwargs={"pnginfo": info}),
                     overwrite=overwrite)
    except FileExistsError:
        raise PlotError(f"{path} already exists; choose another path (overwrite=True replaces it)") from None
    return Picture(path=path, data=data)


def _json_safe(value: Any) -> Any:
    """NaN / infinity become null: the embedded record stays standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _as_mapping(row: Any) -> Mapping[str, Any]:
    if isinstance(row, Mapping):
        return row
    from dataclasses import asdict

    return asdict(row)


def _text(value: Any, limit: int) -> str:
    """A string matplotlib draws as-is: control characters shown escaped, ``$`` not read as mathtext, cut to
    ``limit`` characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("$", r"\$")

