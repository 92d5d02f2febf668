"""The one data module: how files become pixels, and how data sources are split and refused."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_hub.tasks.data import (
    DIGITS,
    ImageLoadError,
    expand_image_paths,
    load_image,
    open_calibration,
    open_labelled,
)
from resnet_hub.errors import DatasetError


def _gradient16(path, height=32, width=64):
    """A 16-bit grey horizontal ramp 0..65535 (what scanners and medical devices write)."""
    ramp = np.tile(np.linspace(0, 65535, width), (height, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(path)
    return ramp


def test_16_bit_png_is_scaled_not_saturated(tmp_path):
    ramp = _gradient16(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")  # really stored as 16-bit
    image = np.asarray(load_image(tmp_path / "g16.png"))
    assert image.shape == (32, 64, 3) and image.dtype == np.uint8
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    assert np.abs(image[..., 0].astype(int) - expected).max() <= 1
    assert 120 <= image.mean() <= 135  # a 0..max ramp averages mid-grey; clipping would give ~255


def test_32_bit_and_float_tiffs_are_scaled(tmp_path):
    ramp = np.tile(np.linspace(0, 1, 50), (10, 1))
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "f.tif")
    Image.fromarray((ramp * 65535).astype(np.int32)).save(tmp_path / "i.tif")
    for name in ("f.tif", "i.tif"):
        pixels = np.asarray(load_image(tmp_path / name))[..., 0]
        assert pixels[0, 0] == 0 and pixels[0, -1] == 255, name
        assert abs(float(pixels.mean()) - 127.5) < 3, name


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored landscape with orientation 6 (rotate 90 degrees clockwise) is portrait when shown."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red as stored
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.size == (20, 40)  # width, height: rotated
    top = np.asarray(loaded)[:10].mean(axis=(0, 1))
    assert top[0] > 200 and top[1] < 60  # the stored left half ends up on top after a clockwise turn


def test_grey_and_palette_images_become_rgb(tmp_path):
    Image.new("L", (9, 7), 77).save(tmp_path / "grey.png")
    Image.new("P", (9, 7), 3).save(tmp_path / "palette.png")
    Image.new("RGBA", (9, 7), (10, 20, 30, 0)).save(tmp_path / "alpha.png")
    for name in ("grey.png", "palette.png", "alpha.png"):
        image = load_image(tmp_path / name)
        assert image.mode == "RGB" and image.size == (9, 7), name
    assert np.asarray(load_image(tmp_path / "grey.png"))[0, 0].tolist() == [77, 77, 77]


def test_decompression_bomb_is_an_unreadable_file_not_a_crash(tmp_path, monkeypatch):
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40,000 pixels is then > 2x the limit: PIL raises
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(tmp_path / "big.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_named_pipe_in_a_folder_is_reported_not_dropped_or_read(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe.jpg")
    files, skipped = expand_image_paths([tmp_path])
    assert [f.name for f in files] == ["a.png"]
    expected = [("pipe.jpg", "not a regular file (a named pipe)")]
    assert [(os.path.basename(s.path), s.reason) for s in skipped] == expected
    with pytest.raises(ImageLoadError, match="named pipe"):
        load_image(tmp_path / "pipe.jpg")  # must not block on open()


def test_digits_split_is_fixed_disjoint_and_covers_every_class():
    train, val = open_labelled(DIGITS, "train"), open_labelled(DIGITS, "val")
    assert len(train) + len(val) == 1797
    assert {i for i, _ in train.items}.isdisjoint({i for i, _ in val.items})
    assert train.classes == val.classes == tuple(str(i) for i in range(10))
    assert sorted({label for _, label in val.items}) == list(range(10))
    assert open_labelled(DIGITS, "eval").items == val.items  # evaluation uses the held-out split
    assert open_labelled(DIGITS, "calib").items == train.items  # calibration never sees evaluation images
    image = val.read(0)
    assert image.mode == "RGB" and image.size == (8, 8)
    from sklearn.datasets import load_digits

    index, label = val.items[0]
    assert label == load_digits().target[index]


def _folder(root, counts, size=(12, 12)):
    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_folder_without_splits_gets_a_seeded_per_class_holdout(tmp_path):
    root = _folder(tmp_path / "data", {"cat": 10, "dog": 5})
    train = open_labelled(root, "train", val_split=0.2, seed=3)
    val = open_labelled(root, "val", val_split=0.2, seed=3)
    assert train.classes == ("cat", "dog")
    assert sorted(label for _, label in val.items) == [0, 0, 1]  # 20 % of each class
    assert {p for p, _ in train.items}.isdisjoint({p for p, _ in val.items})
    assert open_labelled(root, "val", val_split=0.2, seed=3).items == val.items
    assert open_labelled(root, "val", val_split=0.2, seed=4).items != val.items
    assert len(open_labelled(root, "eval")) == 15  # a folder without val/ is evaluated whole


def test_train_and_val_folders_are_used_when_present(tmp_path):
    _folder(tmp_path / "train", {"a": 3, "b": 3})
    _folder(tmp_path / "val", {"a": 2, "b": 1})
    assert len(open_labelled(tmp_path, "train")) == 6 and len(open_labelled(tmp_path, "val")) == 3


@pytest.mark.parametrize("layout,message", [
    ({}, "no class sub-folders"),
    ({"only": 3}, "single class"),
    ({"a": 2, "b": 0}, "No images"),
])
def test_unusable_folders_are_refused_with_the_fix(tmp_path, layout, message):
    root = tmp_path / "data"
    root.mkdir()
    _folder(root, layout)
    (root / "b").mkdir(exist_ok=True) if "b" in layout else None
    if "b" in layout:
        (root / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match=message):
        open_labelled(root, "train")


def test_train_and_val_with_different_classes_are_refused(tmp_path):
    _folder(tmp_path / "train", {"a": 2, "b": 2})
    _folder(tmp_path / "val", {"a": 2, "c": 2})
    with pytest.raises(DatasetError, match=r"only in train: \['b'\]; only in val: \['c'\]"):
        open_labelled(tmp_path, "val")


def test_missing_source_names_digits_as_the_offline_alternative(tmp_path):
    with pytest.raises(DatasetError, match="'digits'"):
        open_labelled(tmp_path / "nope", "train")


def test_calibration_takes_flat_folders_and_samples_across_classes(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(6):
        Image.new("RGB", (8, 8), (i, i, i)).save(flat / f"{i}.png")
    (flat / "readme.txt").write_text("x")
    assert len(open_calibration(flat)) == 6
    sampled = open_calibration(_folder(tmp_path / "sorted", {"a": 20, "b": 20}), limit=10)
    assert {label for _, label in sampled.items} == {0, 1}  # not the first 10 files (all of class a)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="No images"):
        open_calibration(empty)


def test_digits_without_scikit_learn_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from resnet_hub.tasks.data import open_labelled\n"
            "try:\n    open_labelled('digits', 'train')\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'resnet-hub[digits]'" in out and "scikit-learn" in out


def test_the_training_transform_gives_timms_tensors_with_fewer_copies(tmp_path):
    """train_transform ends in ToNormalizedTensor instead of timm's MaybeToTensor + Normalize: with the same random
    crop and flip (same seed), the tensors agree to float rounding on real photos of every mode load_image
    yields; a wrong scale or channel order would be off by whole units."""
    from PIL import Image as PILImage
    from timm.data import create_transform

    from resnet_hub.tasks.data import ToNormalizedTensor, train_transform

    config = dict(input_size=(3, 48, 48), interpolation="bilinear", mean=(0.485, 0.456, 0.406),
                  std=(0.229, 0.224, 0.225))
    ours = train_transform(config)
    timm_steps = create_transform(input_size=(3, 48, 48), is_training=True, hflip=0.5, scale=(0.6, 1.0),
                                  color_jitter=None, interpolation="bilinear", mean=config["mean"], std=config["std"])
    assert isinstance(ours.transforms[-1], ToNormalizedTensor)
    rng = np.random.default_rng(0)
    for i in range(6):
        photo = PILImage.fromarray(rng.integers(0, 256, (60 + 7 * i, 80, 3), dtype=np.uint8))
        random.seed(i), torch.manual_seed(i)  # timm's crop draws from random, torchvision's flip from torch
        expected = timm_steps(photo)
        random.seed(i), torch.manual_seed(i)
        actual = ours(photo)
        assert actual.shape == expected.shape == (3, 48, 48)
        assert (actual - expected).abs().max() < 1e-5
    grey = ToNormalizedTensor((0.5,), (0.25,))(PILImage.fromarray(np.full((4, 4), 255, dtype=np.uint8)))
    assert grey.shape == (1, 4, 4) and torch.allclose(grey, torch.full((1, 4, 4), 2.0))
