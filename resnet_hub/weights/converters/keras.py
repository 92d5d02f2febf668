"""Keras Applications ResNet50/101/152 (v1) and ResNet50V2/101V2/152V2 ``.h5`` weights -> ours.

The file is read with h5py only (no Keras, no model code). Both layouts are understood:

* Keras 3 ``.weights.h5``: ``layers/<attr>/vars/<i>`` with the layer's name in the ``vars`` group's
  ``name`` attribute and the variables in creation order (kernel, bias; gamma, beta, moving_mean,
  moving_variance).
* The legacy (Keras 2 style) ``.h5`` written by ``model.save('x.h5')`` / ``save_weights('x.h5')``:
  ``[model_weights/]<layer>/<layer>/<var>[:0]`` with ``layer_names`` / ``weight_names`` attributes.

Tensors change layout (conv kernels HWIO -> OIHW, Dense kernels transposed). V1 weights expect 'caffe'
input (BGR, ImageNet means subtracted from 0-255 pixels); flipping the first conv's input channels lets
our model take RGB, and the recorded ``KERAS_CAFFE`` mean/std reproduce the rest in timm's [0, 1] RGB
pipeline. V2 weights expect [-1, 1] input, recorded as ``KERAS_TF`` (mean 0.5, std 0.5).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from ...model.configs import KERAS_CAFFE, KERAS_TF
from ..lookup import get_variant
from ...errors import ConversionError, CorruptWeightsError, MissingDependencyError
from .common import ConvertedWeights, finish, require_file

SOURCE_FORMAT = "keras"
_BN_VARS = ("gamma", "beta", "moving_mean", "moving_variance")
_BN_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_WEIGHT_VARS = ("kernel", "bias")

_V1_BLOCK = re.compile(r"^conv(\d)_block(\d+)_([0-3])_(conv|bn)$")
_V2_BLOCK = re.compile(r"^conv(\d)_block(\d+)_(preact_bn|[0-3]_conv|[12]_bn)$")
_V2_NAMES = {"preact_bn": "norm1", "0_conv": "downsample", "1_conv": "conv1", "1_bn": "norm2",
             "2_conv": "conv2", "2_bn": "norm3", "3_conv": "conv3"}


def read_h5_layers(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """``{layer_name: {var_name: array}}`` for every layer that has weights, from either h5 layout."""
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError("h5py", "convert", "Converting Keras weights") from exc
    path = require_file(path)
    try:
        with h5py.File(path, "r") as handle:
            if "layers" in handle and "layer_names" not in handle.attrs:
                layers: dict[str, dict[str, np.ndarray]] = {}
                _read_keras3(handle["layers"], layers)
                return layers
            root = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in root.attrs:
                raise ConversionError(
                    f"{path} is an HDF5 file but not Keras weights (no 'layers' group or 'layer_names' attribute)."
                )
            return _read_legacy(root)
    except OSError as exc:
        raise CorruptWeightsError(f"{path} is not a readable HDF5 file ({exc}); it may be truncated.") from exc


def _read_keras3(group, layers: dict[str, dict[str, np.ndarray]]) -> None:
    for attr_name, layer in group.items():
        if "layers" in layer:  # a nested model (e.g. the application wrapped in a Sequential)
            _read_keras3(layer["layers"], layers)
        variables = layer.get("vars")
        if variables is None or len(variables) == 0:
            continue
        name = variables.attrs.get("name", attr_name)
        name = name.decode() if isinstance(name, bytes) else str(name)
        values = [np.asarray(variables[str(i)]) for i in range(len(variables))]
        layers[name] = dict(zip(_var_names(name, len(values)), values))


def _var_names(layer_name: str, count: int) -> tuple[str, ...]:
    """Keras 3 stores variables by position; ResNet layers create them in a fixed order."""
    if layer_name.endswith("_bn") and count == 4:
        return _BN_VARS
    if count <= 2:
        return _WEIGHT_VARS[:count]
    return tuple(f"var{i}" for i in range(count))  # unknown: reported by the mapping step


def _read_legacy(root) -> dict[str, dict[str, np.ndarray]]:
    layers: dict[str, dict[str, np.ndarray]] = {}
    for raw in root.attrs["layer_names"]:
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        group = root[name]
        weight_names = [w.decode() if isinstance(w, bytes) else str(w) for w in group.attrs.get("weight_names", [])]
        if weight_names:
            layers[name] = {w.rsplit("/", 1)[-1].split(":", 1)[0]: np.asarray(group[w]) for w in weight_names}
    return layers


def _conv(values: dict[str, np.ndarray], prefix: str, out: dict[str, torch.Tensor]) -> None:
    out[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(values["kernel"].transpose(3, 2, 0, 1)))
    if "bias" in values:
        out[f"{prefix}.bias"] = torch.from_numpy(values["bias"].copy())


def _bn(values: dict[str, np.ndarray], prefix: str, out: dict[str, torch.Tensor]) -> None:
    for keras_name, torch_name in _BN_TORCH.items():
        out[f"{prefix}.{torch_name}"] = torch.from_numpy(values[keras_name].copy())


def _dense(values: dict[str, np.ndarray], out: dict[str, torch.Tensor]) -> None:
    out["fc.weight"] = torch.from_numpy(np.ascontiguousarray(values["kernel"].T))
    out["fc.bias"] = torch.from_numpy(values["bias"].copy())


def _map_v1(name: str, values, out) -> bool:
    if name == "conv1_conv":
        _conv(values, "conv1", out)
    elif name == "conv1_bn":
        _bn(values, "bn1", out)
    elif name == "predictions":
        _dense(values, out)
    else:
        match = _V1_BLOCK.match(name)
        if not match:
            return False
        stage, block, index, kind = int(match[1]) - 1, int(match[2]) - 1, int(match[3]), match[4]
        prefix = f"layer{stage}.{block}."
        if index == 0:
            prefix += "downsample." + ("0" if kind == "conv" else "1")
        else:
            prefix += f"{kind}{index}"
        (_conv if kind == "conv" else _bn)(values, prefix, out)
    return True


def _map_v2(name: str, values, out) -> bool:
    if name == "conv1_conv":
        _conv(values, "conv1", out)
    elif name == "post_bn":
        _bn(values, "norm", out)
    elif name == "predictions":
        _dense(values, out)
    else:
        match = _V2_BLOCK.match(name)
        if not match:
            return False
        prefix = f"layer{int(match[1]) - 1}.{int(match[2]) - 1}.{_V2_NAMES[match[3]]}"
        (_conv if match[3].endswith("conv") else _bn)(values, prefix, out)
    return True


def keras_to_ours(layers: dict[str, dict[str, np.ndarray]], v2: bool) -> dict[str, torch.Tensor]:
    """Rename and re-layout every weighted layer; unknown layer names are an error, listed in full."""
    mapper = _map_v2 if v2 else _map_v1
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for name, values in layers.items():
        try:
            known = mapper(name, values, out)
        except KeyError as exc:
            raise ConversionError(f"Keras layer '{name}' lacks variable {exc} (has {sorted(values)}).") from None
        if not known:
            unknown.append(name)
    if unknown:
        kind = "ResNetV2" if v2 else "ResNet (v1)"
        raise ConversionError(
            f"{len(unknown)} Keras layer(s) are not part of Keras Applications' {kind}: {', '.join(sorted(unknown))}. "
            "Only unmodified keras.applications ResNet50/101/152 and ResNet50V2/101V2/152V2 weights convert."
        )
    return out


def _stage_depths(layers: dict[str, dict[str, np.ndarray]]) -> tuple[int, ...]:
    depths = [0, 0, 0, 0]
    for name in layers:
        match = re.match(r"^conv([2-5])_block(\d+)_", name)
        if match:
            stage = int(match[1]) - 2
            depths[stage] = max(depths[stage], int(match[2]))
    return tuple(depths)


def convert(path: str | os.PathLike, model: str) -> ConvertedWeights:
    """Convert Keras Applications weights for ``model`` (``myresnet{50,101,152}_v1`` or
    ``myresnetv2_{50,101,152}_keras``)."""
    variant = get_variant(model)
    if variant.keras_name is None:
        keras_models = ", ".join(n for n, v in _keras_variants().items())
        raise ConversionError(f"{variant.name} has no Keras Applications counterpart; choose one of {keras_models}.")
    v2 = variant.family == "resnetv2"
    layers = read_h5_layers(path)
    if not layers:
        raise ConversionError(f"{path} holds no layer weights.")
    depths = _stage_depths(layers)
    looks_v2 = "post_bn" in layers or any(n.endswith("_preact_bn") for n in layers)
    if looks_v2 != v2 or depths != tuple(variant.layers):
        found = f"ResNet{'V2' if looks_v2 else ''} with stage depths {depths}"
        raise ConversionError(
            f"{path} holds a Keras {found}, but {variant.name} ({variant.keras_name}) has stage depths "
            f"{tuple(variant.layers)}. Choose the matching --model."
        )
    state_dict = keras_to_ours(layers, v2)
    notes = ["conv kernels HWIO -> OIHW, Dense kernel transposed"]
    if v2:
        preprocessing = KERAS_TF
    else:
        # 'caffe' weights see BGR: reverse the first conv's input channels so RGB input gives the same result.
        state_dict["conv1.weight"] = state_dict["conv1.weight"].flip(1).contiguous()
        preprocessing = KERAS_CAFFE
        notes.append("first conv input channels flipped BGR -> RGB (Keras 'caffe' preprocessing)")
    return finish(state_dict, variant.name, SOURCE_FORMAT, Path(path), preprocessing, notes)


def _keras_variants() -> dict[str, str]:
    from ...model.configs import VARIANTS

    return {name: v.keras_name for name, v in VARIANTS.items() if v.keras_name}
