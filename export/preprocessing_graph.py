"""Preprocessing inside the exported graph: the model takes decoded uint8 RGB pixels, NHWC.

A client that sends floats must re-implement the weights' preprocessing (scale, mean/std, layout) exactly, and a
mismatch (0-255 instead of 0-1, BGR, NHWC) does not fail: it silently ruins accuracy. With
``--embed-preprocessing`` the graph starts with the same operations timm's eval transform ends with —
``ToTensor`` (cast, /255, HWC -> CHW) then ``Normalize`` ((x - mean) / std), in that order and in float32 — so
for the same pixels the graph sees bit-for-bit the tensor PyTorch sees after timm's transform. Decoding,
resizing and cropping stay with the client (they depend on the source image's size), which is why the graph's
height and width are fixed to the export's input size.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .errors import ExportOptionError

# What the manifest and the Triton README say about the input of a graph with embedded preprocessing.
PIXEL_DTYPE = "uint8"
PIXEL_LAYOUT = "NHWC"
IN_GRAPH_STEPS = "cast to float32, / 255, (x - mean) / std, NHWC -> NCHW"


class EmbeddedPreprocessing(nn.Module):
    """``model`` behind timm's ToTensor + Normalize: uint8 (N, H, W, 3) pixels in, logits out."""

    mean: torch.Tensor  # buffers (register_buffer): typed for the checker
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        # Float32 constants shaped for NHWC broadcasting, as torchvision's Normalize holds them (as tensors).
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32), persistent=False)
        # Mirror the model's mode: callers that put a module in eval mode and restore it afterwards must leave the
        # wrapped model as they found it (a new nn.Module starts in training mode).
        self.train(model.training)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.to(torch.float32).div(255.0)  # ToTensor
        x = x.sub(self.mean).div(self.std)  # Normalize (element-wise: the layout does not change the values)
        return self.model(x.permute(0, 3, 1, 2))


class PixelGrid(nn.Module):
    """``model`` on the pixels a client would send for a normalised input: the verification reference.

    Verification and the accuracy gate hand every runner the same normalised float batch. A graph with embedded
    preprocessing receives it as uint8 pixels (``runtime.to_uint8_nhwc``: rounded, clipped to 0-255), so
    PyTorch must see those same pixels, normalised the way timm does it. For real images (which came from 8-bit
    pixels) this is timm's tensor unchanged; for noise inputs it snaps them to the pixel grid.
    """

    mean: torch.Tensor  # buffers (register_buffer): typed for the checker
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float64, like runtime.to_uint8_nhwc, so both round every value to the same pixel.
        pixels = ((x.double() * self.std.double() + self.mean.double()) * 255.0).round().clamp(0, 255)
        return self.model(pixels.to(torch.float32).div(255.0).sub(self.mean).div(self.std))


def check_embeddable(input_shape: Sequence[Any]) -> tuple[int, int]:
    """(height, width) of an NCHW export shape, refusing sizes that are not fixed positive integers.

    The embedded graph states its pixel input as [batch, H, W, 3]: a client must know the exact H and W to
    resize and crop to, and Triton's config lists them. An image size left dynamic (symbolic or -1) has no such
    contract, so embedding preprocessing then is refused.
    """
    if len(input_shape) != 4:
        raise ExportOptionError(f"--embed-preprocessing needs an (N, C, H, W) input shape, got {tuple(input_shape)}")
    channels, height, width = input_shape[1:]
    fixed = all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in (channels, height, width))
    if not fixed:
        raise ExportOptionError(
            f"--embed-preprocessing needs a fixed image size, got {height}x{width}: the graph takes decoded pixels "
            "of exactly the size the client resizes and crops to (the weights' input size, or --img-size H W). "
            "Pass a fixed --img-size, or export without --embed-preprocessing to keep a float NCHW input.")
    if channels != 3:
        raise ExportOptionError(f"--embed-preprocessing takes RGB pixels (3 channels); this model has {channels} "
                                "input channels")
    return int(height), int(width)


def pixel_input_record(input_shape: Sequence[int]) -> dict[str, Any]:
    """The manifest's description of the pixel input (what a client sends)."""
    height, width = check_embeddable(input_shape)
    return dict(dtype=PIXEL_DTYPE, layout=PIXEL_LAYOUT, shape=["batch", height, width, 3],
                in_graph=IN_GRAPH_STEPS,
                client_steps="decode to RGB, resize and center-crop to the weights' input size, send uint8 pixels")


def with_embedded_preprocessing(preprocessing: dict[str, Any]) -> dict[str, Any]:
    """The manifest's preprocessing record for a pixel-input graph: the same weights' facts (size, mean, std,
    resize and crop), marked as done in the graph from the normalisation on."""
    return dict(preprocessing, embedded_in_graph=True, layout=PIXEL_LAYOUT,
                pixel_range="uint8 RGB pixels 0-255; the graph scales them to [0, 1] and applies (x - mean) / std",
                client_steps="decode to RGB, resize and center-crop to input_size; send uint8 NHWC pixels")
