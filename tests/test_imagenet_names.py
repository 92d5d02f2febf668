"""ImageNet weights are evaluated by class name: a subset of ImageNet's classes in synset-named folders (as
Imagenette ships them) is scored against the right outputs instead of being refused for not having 1,000."""

from __future__ import annotations

import pytest
import torch
from timm.data import ImageNetInfo

import resnet_hub
from resnet_hub.errors import EvaluationError
from resnet_hub.tasks.evaluate import class_mapping, evaluate


def test_synset_ids_and_class_names_map_to_timms_imagenet_indices():
    info = ImageNetInfo()  # the oracle: timm's bundled ImageNet-1k class list
    wanted = [0, 1, 217, 999]
    synsets = [info.index_to_label_name(i) for i in wanted]
    assert class_mapping(synsets, None, 1000) == wanted
    names = [info.index_to_description(i).split(",")[0] for i in wanted]
    assert class_mapping(names, None, 1000) == wanted
    with pytest.raises(EvaluationError, match="synset id"):
        class_mapping([synsets[0], "not-a-class"], None, 1000)


def test_a_synset_folder_subset_is_evaluated_with_an_imagenet_head(tmp_path):
    """A seeded 1000-class model on two synset folders: scored, and its top-1 counts against those indices."""
    from PIL import Image

    info = ImageNetInfo()
    torch.manual_seed(0)
    model = resnet_hub.create_model("myresnet18")  # 1000 classes, no recorded names: an ImageNet head
    weights = tmp_path / "in1k.safetensors"
    resnet_hub.save_weights(model, weights, architecture="myresnet18",
                            metadata={"preprocessing": {"input_size": [3, 32, 32], "crop_pct": 1.0,
                                                        "interpolation": "bilinear"}})
    data = tmp_path / "imagenette-like"
    for i, synset in ((0, info.index_to_label_name(0)), (217, info.index_to_label_name(217))):
        (data / synset).mkdir(parents=True)
        for j in range(2):
            Image.new("RGB", (40, 40), (i % 256, 40 * j, 90)).save(data / synset / f"{j}.png")
    result = evaluate(weights, data)
    assert result.n == 4 and {c.name for c in result.per_class} == {info.index_to_label_name(0),
                                                                      info.index_to_label_name(217)}
