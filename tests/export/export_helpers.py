"""Helpers shared by the export tests: small inputs, meaningful logits, subprocess runs."""

from __future__ import annotations

from pathlib import Path

import torch


# 64 px keeps a ResNet-152 export + ONNX Runtime check at a few seconds on 2 cores while every stage still
# runs (the last stage sees a 2x2 map), so the parity check covers every layer.
IMG = (64, 64)
LOGIT_STD = 3.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def make_logits_meaningful(model: torch.nn.Module, randomize, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics (so folding is exercised) and a classifier scaled so logits are O(1-10).

    Freshly initialised networks give logits of ~0.1-0.5, where a 1e-4 absolute tolerance says little; with
    logits of std ~3 it is a relative error of ~3e-5.
    """
    randomize(model, seed=seed)
    model.eval()
    x = torch.randn(4, 3, *IMG, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        std = model(x).std().item()
        fc = model.get_classifier()
        fc.weight.mul_(LOGIT_STD / std)
        fc.bias.mul_(LOGIT_STD / std)
    return model




def minimal_manifest(fmt: str, files: dict[str, bytes], **sections) -> dict:
    """The smallest manifest :class:`resnet_hub.export.manifest.Manifest` accepts, for ``files`` (name -> content)
    of a ``fmt`` export; ``sections`` are added or replace the defaults."""
    import hashlib

    artifact = "model.plan" if "tensorrt" in fmt else "model.onnx"
    manifest = dict(
        manifest_version=1, format=fmt, model=dict(name="myresnet18", num_classes=10, label_names=None),
        weights=dict(source="random-init", file_sha256=None, state_dict_sha256=None),
        preprocessing=dict(input_size=[3, 32, 32], interpolation="bilinear", crop_pct=1.0, crop_mode="center",
                           mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25]),
        files=[dict(name=name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
               for name, data in files.items()],
        verification=[dict(artifact=artifact, runtime="ONNX Runtime (CPU)", passed=True, tolerance={},
                           checks=[dict(batch_size=1)])],
        verified=True, export={})
    manifest.update(sections)
    return manifest


def tree(path: Path) -> list[str]:
    """Every path under ``path`` (relative), for 'nothing was left behind' assertions."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))
