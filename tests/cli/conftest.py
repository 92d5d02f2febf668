"""Fixtures for the predict / benchmark CLI tests: a seeded weights file and drawn images (the console script
runs through ``helpers.cli.run_cli``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import resnet_hub

# Preprocessing recorded in the weights file: small input so the subprocess runs stay fast, and values
# that differ from every variant default so the test proves the metadata is what was used.
RECORDED_PREPROCESSING = {
    "input_size": [3, 64, 64],
    "crop_pct": 0.9,
    "interpolation": "bilinear",
    "mean": [0.5, 0.45, 0.4],
    "std": [0.25, 0.25, 0.25],
}


def _seeded_model(num_classes: int = 1000) -> torch.nn.Module:
    """Seeded weights with non-trivial BatchNorm statistics, so the folded fast path is really exercised."""
    torch.manual_seed(1234)
    model = resnet_hub.create_model("myresnet18", num_classes=num_classes, zero_init_last=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.3, 0.7)
                module.bias.normal_(0, 0.1)
        model.fc.weight.mul_(20)  # confident predictions: top-k order is then far from float ties
    return model.eval()


@pytest.fixture(scope="session")
def predict_weights(tmp_path_factory) -> Path:
    """myresnet18 weights (1000 classes) recording their preprocessing in the safetensors metadata."""
    path = tmp_path_factory.mktemp("weights") / "myresnet18-seeded.safetensors"
    resnet_hub.save_weights(_seeded_model(), path, architecture="myresnet18",
                            metadata={"preprocessing": RECORDED_PREPROCESSING})
    return path


@pytest.fixture(scope="session")
def predict_weights_10_classes(tmp_path_factory) -> Path:
    """myresnet18 weights with a 10-class head and no recorded preprocessing."""
    path = tmp_path_factory.mktemp("weights10") / "myresnet18-10.safetensors"
    resnet_hub.save_weights(_seeded_model(num_classes=10), path, architecture="myresnet18")
    return path


def draw_image(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A deterministic picture (gradient background, shapes) with PIL, saved in the format of the suffix."""
    from PIL import Image, ImageDraw

    generator = torch.Generator().manual_seed(seed)
    colours = [tuple(int(c) for c in torch.randint(0, 256, (3,), generator=generator)) for _ in range(4)]
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 8, height // 8, width // 2, height // 2), fill=colours[0])
    draw.rectangle((width // 2, height // 3, width - 5, height - 5), fill=colours[1], outline=colours[2])
    draw.line((0, height - 1, width - 1, 0), fill=colours[3], width=3)
    image.save(path)
    return path


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """Three readable images (PNG and JPEG, different sizes), a text file and a truncated JPEG."""
    folder = tmp_path_factory.mktemp("images")
    draw_image(folder / "a_shapes.png", (96, 72), seed=1)
    draw_image(folder / "b_shapes.jpg", (80, 120), seed=2)
    draw_image(folder / "c_shapes.png", (64, 64), seed=3)
    (folder / "notes.txt").write_text("not an image\n")
    whole = draw_image(folder / "whole.jpg", (128, 128), seed=4).read_bytes()
    (folder / "whole.jpg").unlink()
    (folder / "d_corrupted.jpg").write_bytes(whole[: len(whole) // 3])
    return folder


@pytest.fixture(scope="session")
def recorded_preprocessing() -> dict:
    return dict(RECORDED_PREPROCESSING)
