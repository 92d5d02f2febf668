"""Every image the package reads comes through here: files for predict, labelled folders and the built-in
``digits`` set for fine-tuning and evaluation, calibration images for int8.

Deciding in one place how an image becomes pixels is what keeps training, evaluation, calibration and
serving consistent; a mismatch there is the commonest cause of "accuracy collapsed after deployment". So:
EXIF orientation is applied, 16-bit / 32-bit / float images are scaled to 8 bits (not saturated), grey and
palette images become RGB, and an unreadable file is reported back to the caller instead of aborting a run.

Data sources are named the way users name them: a folder in torchvision's ImageFolder convention (one
sub-folder per class, classes in sorted order; ``SRC/train`` and ``SRC/val`` when present) or ``digits``, the
1,797 real 8x8 handwritten digits that scikit-learn ships inside its wheel (no download), upsampled by the
transform like any small image.
"""

from __future__ import annotations

import os
import random
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Literal, Sequence

from ..errors import DatasetError, MissingDependencyError

if TYPE_CHECKING:  # heavy imports stay out of module import time
    import torch
    from PIL import Image as PILImage

DIGITS = "digits"
# torchvision's ImageFolder extensions: files with other suffixes in a class folder are not images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# The digits split is fixed (not the user's --seed), so every evaluation of a digits model sees the same images.
DIGITS_VAL_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0

Split = Literal["train", "val", "eval", "calib"]


class ImageLoadError(ValueError):
    """A file is missing, unreadable, or not an image PIL can decode (callers skip it and say why)."""


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


# --- one image -------------------------------------------------------------------------------------------


def load_image(path: str | os.PathLike | BinaryIO) -> "PILImage.Image":
    """Open, fully decode, orient and convert an image to 8-bit RGB; ImageLoadError with a short reason otherwise.

    ``path`` may also be an open binary stream (bytes read from object storage), decoded the same way.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not hasattr(path, "read"):
        path = Path(path)
        if path.exists() and not path.is_file() and not path.is_dir():
            raise ImageLoadError(f"not a regular file ({_file_kind(path)})")
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later inside the transform
            # Phone photos store rotation in EXIF, not in pixels. In place: without an orientation tag the
            # copy exif_transpose would return costs ~15 % of a 500x375 JPEG's decode, per image.
            ImageOps.exif_transpose(image, in_place=True)
            return to_rgb8(image)
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"refused as a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageLoadError("not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt data, permission errors
        raise ImageLoadError(f"cannot decode image ({exc})") from None


def to_rgb8(image: "PILImage.Image") -> "PILImage.Image":
    """8-bit RGB from any PIL mode, scaling high-bit-depth pixels instead of clipping them.

    ``convert('RGB')`` clips a 16-bit grey image (values up to 65535) to 255, so it comes out almost white;
    here 16-bit is divided by 257, 32-bit integers by their type's range, and float images are read as
    [0, 1] when they fit (the TIFF convention), else as [0, 255].
    """
    import numpy as np
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        pixels = np.asarray(image)
        if image.mode.startswith("I;16"):
            scaled = pixels.astype(np.float64) / 257.0
        elif image.mode == "I":
            top = float(pixels.max()) if pixels.size else 0.0
            # PIL opens 16-bit PNG/TIFF grey as 'I' too: keep their 16-bit range when the values fit in it.
            scaled = pixels.astype(np.float64) / (257.0 if 0 <= pixels.min() and top <= 65535 else 16843009.0)
        else:
            finite = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
            scaled = finite * 255.0 if finite.size and finite.max() <= 1.0 else finite
        grey = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
        return grey.convert("RGB")
    return image.convert("RGB")  # L, LA, P, RGBA, CMYK, 1, ...: PIL's conversions are exact for 8-bit modes


def _file_kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def expand_image_paths(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[SkippedFile]]:
    """Files as given, folders replaced by their files (sorted, not recursive, hidden files ignored).

    Folder contents are not filtered by extension: a file that is not an image is reported as skipped rather
    than silently left out, so users see why it has no prediction. Pipes and devices are skipped with a reason
    (reading one could block forever).
    """
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.name.startswith(".") or entry.is_dir():
                    continue
                if entry.is_file():
                    files.append(entry)
                elif entry.exists():
                    skipped.append(SkippedFile(str(entry), f"not a regular file ({_file_kind(entry)})"))
        elif path.is_file():
            files.append(path)
        elif path.exists():
            skipped.append(SkippedFile(str(path), f"not a regular file ({_file_kind(path)})"))
        else:
            skipped.append(SkippedFile(str(path), "no such file or folder"))
    return files, skipped


# --- labelled sources --------------------------------------------------------------------------------------


@dataclass
class LabelledImages:
    """Labelled images from one source and split: class names, and (item, label) pairs.

    An item is a file path, or an index into ``arrays`` for in-memory sources (digits). ``read(i)`` gives the
    decoded 8-bit RGB image; unreadable files raise ImageLoadError so the caller decides to skip them.
    """

    source: str
    split: str
    classes: tuple[str, ...]
    items: list[tuple[str | int, int]]
    arrays: Any = None  # (N, H, W) uint8 for in-memory sources
    ignored: list[str] = field(default_factory=list)  # files that are not images (by suffix), for warnings

    def __len__(self) -> int:
        return len(self.items)

    def read(self, index: int) -> "PILImage.Image":
        item, _ = self.items[index]
        if isinstance(item, int):
            from PIL import Image

            return Image.fromarray(self.arrays[item], mode="L").convert("RGB")
        return load_image(item)

    def label(self, index: int) -> int:
        return self.items[index][1]

    def name_of(self, index: int) -> str:
        item, _ = self.items[index]
        return f"{self.source}[{item}]" if isinstance(item, int) else str(item)

    def describe(self) -> dict[str, Any]:
        """What a training record or manifest says about the data: enough to find it again."""
        return dict(source=self.source, split=self.split, n=len(self), classes=list(self.classes))

    def subset(self, indices: Sequence[int]) -> "LabelledImages":
        return LabelledImages(self.source, self.split, self.classes, [self.items[i] for i in indices],
                              self.arrays, list(self.ignored))


def open_labelled(
    source: str | os.PathLike, split: Split, *, val_split: float = 0.2, seed: int = 0
) -> LabelledImages:
    """The labelled images of ``source`` for one use.

    ``train`` / ``val``: ``SRC/train`` and ``SRC/val`` when both exist, else a per-class seeded hold-out of
    ``val_split`` (digits: a fixed 80/20 split). ``eval``: ``SRC/val`` when it exists, else every image of SRC
    (a test folder); digits: its val split. ``calib``: images for int8 calibration, kept apart from the images
    the export is evaluated on: ``SRC/train`` (digits: its train split), else every image of SRC.
    """
    if str(source) == DIGITS:
        return _digits(split)
    root = Path(source)
    if not root.exists():
        raise DatasetError(f"Data source not found: {root}. Pass an image folder (one sub-folder per class) "
                           f"or '{DIGITS}' for the built-in handwritten digits")
    if not root.is_dir():
        raise DatasetError(f"Data source {root} is a file; pass a folder with one sub-folder per class, "
                           f"or '{DIGITS}'")
    if _only_val(root):  # ImageNet's validation set is usually unpacked as SRC/val/<class>/...
        chosen = _image_folder(root / "val", str(root))
        chosen.split = "val" if split == "eval" else f"val (the folder's only split, read for {split})"
        return chosen
    has_splits = (root / "train").is_dir() and (root / "val").is_dir()
    if has_splits:
        train, val = _image_folder(root / "train", str(root)), _image_folder(root / "val", str(root))
        if train.classes != val.classes:
            only_train = sorted(set(train.classes) - set(val.classes))
            only_val = sorted(set(val.classes) - set(train.classes))
            raise DatasetError(f"{root}/train and {root}/val have different classes (only in train: "
                               f"{only_train or 'none'}; only in val: {only_val or 'none'}); both need the same "
                               "class sub-folders")
        chosen = {"train": train, "val": val, "eval": val, "calib": train}[split]
        chosen.split = _shown(split)
        return chosen
    everything = _image_folder(root, str(root))
    if split in ("eval", "calib"):
        everything.split = "all images (no val/ sub-folder)" if split == "eval" else split
        return everything
    if not 0.0 < val_split < 1.0:
        raise DatasetError(f"--val-split must be between 0 and 1 (exclusive), got {val_split}")
    train_idx, val_idx = _stratified_holdout([label for _, label in everything.items], val_split, seed)
    chosen = everything.subset(train_idx if split == "train" else val_idx)
    chosen.split = f"{split} (seeded hold-out {val_split:g}, seed {seed})"
    if not len(chosen):
        raise DatasetError(f"The {split} split of {root} is empty: the folder has too few images for a "
                           f"{val_split:g} hold-out; add images or give {root}/train and {root}/val")
    return chosen


def open_calibration(source: str | os.PathLike, limit: int | None = None, seed: int = 0) -> LabelledImages:
    """Images to calibrate int8 activation ranges on: a labelled source's ``calib`` split, or a flat folder of
    images (calibration needs no labels). Beyond ``limit``, a seeded sample over the whole set is taken, not the
    first files, so a class-sorted folder still contributes every class."""
    root = Path(source)
    if str(source) != DIGITS and root.is_dir() and not _has_class_folders(root):
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith("."))
        if not files:
            raise DatasetError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {root}; int8 calibration needs "
                               "representative images, ideally a few hundred from the deployment domain")
        images = LabelledImages(source=str(root), split="calib", classes=("unlabelled",),
                                items=[(str(p), 0) for p in files])
    else:
        images = open_labelled(source, "calib")
    if limit is not None and len(images) > limit:
        chosen = sorted(random.Random(seed).sample(range(len(images)), limit))
        images = images.subset(chosen)
    return images


def has_val_split(source: str | os.PathLike) -> bool:
    """Whether ``source`` has its own validation split: digits, ``SRC/train`` + ``SRC/val``, or only ``SRC/val``."""
    if str(source) == DIGITS:
        return True
    root = Path(source)
    return (root / "val").is_dir() and ((root / "train").is_dir() or _only_val(root))


def _only_val(root: Path) -> bool:
    """A folder whose only sub-folder is ``val/`` (not a one-class dataset named 'val')."""
    if not (root / "val").is_dir():
        return False
    folders = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folders == ["val"] and _has_class_folders(root / "val")


def _has_class_folders(root: Path) -> bool:
    return any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())


def _image_folder(folder: Path, source: str) -> LabelledImages:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{folder} has no class sub-folders. Lay images out as {folder}/<class>/<image> "
                           f"(torchvision ImageFolder), or pass '{DIGITS}'")
    if len(classes) < 2:
        raise DatasetError(f"{folder} has a single class ('{classes[0]}'); classification needs at least 2 "
                           "class sub-folders")
    items: list[tuple[str | int, int]] = []
    ignored: list[str] = []
    empty: list[str] = []
    for label, name in enumerate(classes):
        found = 0
        for path in sorted((folder / name).rglob("*")):
            if path.name.startswith(".") or path.is_dir():
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                items.append((str(path), label))
                found += 1
            else:
                ignored.append(str(path))
        if not found:
            empty.append(name)
    if empty:
        raise DatasetError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in class folder(s) {', '.join(empty)} of "
                           f"{folder}" + (f" ({len(ignored)} non-image file(s) ignored)" if ignored else ""))
    _refuse_unreadable_classes(folder, classes, items)
    return LabelledImages(source=source, split="all", classes=tuple(classes), items=items, ignored=ignored)


# A class folder is probed in file order until one image decodes; this many failures in a row refuse it.
PROBE_FILES = 32


def _refuse_unreadable_classes(folder: Path, classes: Sequence[str], items: Sequence[tuple[str | int, int]]) -> None:
    """A class whose images cannot be decoded is as good as empty: training would learn the other classes only
    and report a perfect score. One decode per class in the common case; a class whose first PROBE_FILES files
    all fail is refused without reading the rest (a folder of 50,000 broken files fails in seconds)."""
    by_class: dict[int, list[str]] = {}
    for item, label in items:
        by_class.setdefault(label, []).append(str(item))
    unreadable: list[str] = []
    example = ""
    for label, files in sorted(by_class.items()):
        failures: list[str] = []
        for path in files[:PROBE_FILES]:
            try:
                load_image(path)
                break
            except ImageLoadError as exc:
                failures.append(f"{path}: {exc}")
        else:
            example = example or failures[0]
            some = "" if len(files) <= PROBE_FILES else f"the first {PROBE_FILES} of "
            unreadable.append(f"{classes[label]} ({some}{len(files)} file(s) unreadable)")
    if unreadable:
        raise DatasetError(f"No readable images in class folder(s) {', '.join(unreadable)} of {folder} "
                           f"(e.g. {example}); every class needs images PIL can decode")


def _stratified_holdout(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Per-class seeded hold-out, so every class is in both splits (a class with one image stays in train)."""
    rng = random.Random(seed)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        rng.shuffle(members)
        n_val = int(round(len(members) * fraction)) if len(members) > 1 else 0
        n_val = min(max(n_val, 1 if len(members) > 1 else 0), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return sorted(train), sorted(val)


def _shown(split: Split) -> str:
    """The split's name in records and output. ``eval`` selects the images to evaluate on, which are the held-out
    ``val`` split: the user sees one name for it ("val"), never also "eval"."""
    return "val" if split == "eval" else split


def _digits(split: Split) -> LabelledImages:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MissingDependencyError("scikit-learn", "digits", f"The built-in '{DIGITS}' dataset") from exc
    import numpy as np

    bunch = load_digits()
    # 0..16 ink intensities -> 0..255 grey, bright strokes on black as scikit-learn stores them.
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = [int(v) for v in bunch.target]
    train_idx, val_idx = _stratified_holdout(labels, DIGITS_VAL_FRACTION, DIGITS_SPLIT_SEED)
    chosen = val_idx if split in ("val", "eval") else train_idx
    return LabelledImages(source=DIGITS, split=f"{_shown(split)} (fixed {len(train_idx)}/{len(val_idx)} split)",
                          classes=tuple(str(i) for i in range(10)),
                          items=[(i, labels[i]) for i in chosen], arrays=pixels)


# --- tensors ---------------------------------------------------------------------------------------------


def eval_transform(data_config: dict[str, Any]) -> Callable[["PILImage.Image"], "torch.Tensor"]:
    """timm's evaluation transform for a data config (resize, centre crop, normalise): the one used for
    evaluation, calibration, verification and predict, so all of them see the same pixels."""
    from timm.data import create_transform

    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    return create_transform(**{k: data_config[k] for k in keys if k in data_config}, is_training=False)


def train_transform(data_config: dict[str, Any], *, hflip: float = 0.5) -> Callable[["PILImage.Image"], "torch.Tensor"]:
    """timm's training transform (random resized crop, flip) at the data config's size and normalisation, ending
    in :class:`ToNormalizedTensor` instead of timm's ``MaybeToTensor`` + ``Normalize`` (same values to float
    rounding, fewer copies: the decoding workers are what feeds a GPU). No colour jitter: timm's
    ``color_jitter=0`` still runs a no-op ``ColorJitter`` per image, ``None`` leaves it out."""
    from timm.data import create_transform
    from timm.data.transforms import MaybeToTensor
    from torchvision import transforms

    # timm's code takes color_jitter=None (no ColorJitter step); only its annotation does not say so.
    timm_steps = create_transform(input_size=data_config["input_size"], is_training=True, hflip=hflip,
                                  scale=(0.6, 1.0), color_jitter=None,  # type: ignore[arg-type]
                                  interpolation=data_config["interpolation"], mean=data_config["mean"],
                                  std=data_config["std"])
    *geometry, to_tensor, normalize = timm_steps.transforms
    if not (isinstance(to_tensor, MaybeToTensor) and isinstance(normalize, transforms.Normalize)):
        raise RuntimeError(f"timm's training transform changed shape ({timm_steps}); update train_transform")
    return transforms.Compose([*geometry, ToNormalizedTensor(data_config["mean"], data_config["std"])])


class ToNormalizedTensor:
    """A PIL image as the normalised float (C, H, W) tensor that ``to_tensor`` then ``Normalize`` give, computed
    as ``pixels * (1 / (255 std)) - mean / std``: one conversion and two in-place passes instead of their five
    tensor copies (``Normalize`` clones its input). Values agree to float rounding (``tests/test_data.py``)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        import torch

        self.scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32).view(-1, 1, 1)
        self.shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, image: "PILImage.Image") -> "torch.Tensor":
        import numpy as np
        import torch

        pixels = np.array(image, dtype=np.uint8, copy=True)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        tensor = torch.from_numpy(pixels).permute(2, 0, 1).to(torch.float32, memory_format=torch.contiguous_format)
        return tensor.mul_(self.scale).add_(self.shift)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale.flatten().tolist()}, shift={self.shift.flatten().tolist()})"


def hflip_for(images: LabelledImages) -> float:
    """Mirroring a handwritten digit makes another symbol; photos of objects are mirror-invariant."""
    return 0.0 if images.source == DIGITS else 0.5
