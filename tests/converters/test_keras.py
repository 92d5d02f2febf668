"""Keras Applications -> ours: parity with the real Keras model (random weights, non-trivial BN stats)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from converter_helpers import IMG, normalise

keras = pytest.importorskip("keras")

import resnet_hub  # noqa: E402
from resnet_hub.model.configs import KERAS_CAFFE, KERAS_TF  # noqa: E402
from resnet_hub.weights.converters.dispatch import convert_checkpoint  # noqa: E402
from resnet_hub.errors import ConversionError  # noqa: E402
from resnet_hub.weights.io import load_weights, load_weights_into, read_metadata  # noqa: E402


def _randomise(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = weights
            weights = [rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                       rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)]
        elif len(weights) == 2:  # conv / dense bias: zero by default, which would hide a mis-mapped bias
            weights = [weights[0], rng.normal(0, 0.05, weights[1].shape)]
        layer.set_weights([w.astype("float32") for w in weights])


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """Real Keras ResNet50 / ResNet50V2 with random weights, saved in both h5 layouts."""
    root = tmp_path_factory.mktemp("keras")
    files = {}
    for key, ctor in (("v1", keras.applications.ResNet50), ("v2", keras.applications.ResNet50V2)):
        model = ctor(weights=None, input_shape=(IMG, IMG, 3), classifier_activation=None)
        _randomise(model, seed=len(files))
        model.save_weights(root / f"{key}.weights.h5")
        model.save(root / f"{key}.h5")  # Keras' legacy (Keras 2 style) HDF5 layout
        files[key] = (model, root / f"{key}.weights.h5", root / f"{key}.h5")
    return files


def _probabilities_diff(keras_model, converted_path, name, preprocess, tmp_path):
    ours = resnet_hub.create_model(name).eval()
    load_weights_into(ours, converted_path)
    images = np.random.default_rng(3).uniform(0, 255, (2, IMG, IMG, 3)).astype("float32")
    keras_logits = torch.as_tensor(keras.ops.convert_to_numpy(keras_model(preprocess(images.copy()), training=False)))
    metadata = read_metadata(converted_path)
    recorded = json.loads(metadata["preprocessing"])
    with torch.no_grad():
        our_logits = ours(normalise(images / 255.0, recorded["mean"], recorded["std"]))
    return (our_logits.softmax(-1) - keras_logits.softmax(-1)).abs().max().item(), \
        (our_logits - keras_logits).abs().max().item()


def test_keras_resnet50_v1_matches_keras_after_recorded_caffe_preprocessing(keras_files, tmp_path):
    model, weights_h5, _ = keras_files["v1"]
    report = convert_checkpoint(weights_h5, "keras", "myresnet50_v1", tmp_path / "v1.safetensors")
    assert report.preprocessing == KERAS_CAFFE
    prob_diff, logit_diff = _probabilities_diff(
        model, report.output, "myresnet50_v1", keras.applications.resnet.preprocess_input, tmp_path)
    print(f"keras ResNet50 v1: max|dp|={prob_diff:.2e} max|dlogit|={logit_diff:.2e}")
    assert prob_diff <= 1e-4
    assert logit_diff <= 1e-3


def test_keras_resnet50_v2_matches_keras_after_recorded_tf_preprocessing(keras_files, tmp_path):
    model, weights_h5, _ = keras_files["v2"]
    report = convert_checkpoint(weights_h5, "keras", "myresnetv2_50_keras", tmp_path / "v2.safetensors")
    assert report.preprocessing == KERAS_TF
    prob_diff, logit_diff = _probabilities_diff(
        model, report.output, "myresnetv2_50_keras", keras.applications.resnet_v2.preprocess_input, tmp_path)
    print(f"keras ResNet50V2: max|dp|={prob_diff:.2e} max|dlogit|={logit_diff:.2e}")
    assert prob_diff <= 1e-4
    assert logit_diff <= 1e-3


@pytest.mark.parametrize("key,name", [("v1", "myresnet50_v1"), ("v2", "myresnetv2_50_keras")])
def test_legacy_h5_layout_converts_to_the_same_tensors(keras_files, tmp_path, key, name):
    _, weights_h5, legacy_h5 = keras_files[key]
    a = convert_checkpoint(weights_h5, "keras", name, tmp_path / "a.safetensors")
    b = convert_checkpoint(legacy_h5, "keras", name, tmp_path / "b.safetensors")
    sd_a, meta_a = load_weights(a.output)
    sd_b, meta_b = load_weights(b.output)
    assert sd_a.keys() == sd_b.keys()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    assert meta_a["source_format"] == "keras" and meta_b["source_file"] == legacy_h5.name


def test_keras_file_for_another_depth_or_family_is_refused(keras_files, tmp_path):
    _, v1_file, _ = keras_files["v1"]
    with pytest.raises(ConversionError, match=r"stage depths \(3, 4, 6, 3\).*myresnet101_v1"):
        convert_checkpoint(v1_file, "keras", "myresnet101_v1", tmp_path / "x.safetensors")
    with pytest.raises(ConversionError, match="ResNetV2"):
        convert_checkpoint(keras_files["v2"][1], "keras", "myresnet50_v1", tmp_path / "x.safetensors")
    with pytest.raises(ConversionError, match="no Keras Applications counterpart"):
        convert_checkpoint(v1_file, "keras", "myresnet50", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_unknown_keras_layer_names_are_listed(tmp_path):
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(IMG, IMG, 3))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    x = keras.layers.Dense(16, name="my_bottleneck")(x)
    out = keras.layers.Dense(10, name="my_head")(x)
    keras.Model(base.input, out).save_weights(tmp_path / "custom.weights.h5")
    with pytest.raises(ConversionError, match="my_bottleneck, my_head"):
        convert_checkpoint(tmp_path / "custom.weights.h5", "keras", "myresnet50_v1", tmp_path / "o.safetensors")
