"""Triton model repositories: layout, configs parsed by Triton's own ModelConfig protobuf, README."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from export_helpers import IMG, tree
from tritonclient.grpc import model_config_pb2

from resnet_hub.export.files import leftover_staging
from resnet_hub.export.onnx import OnnxOptions
from resnet_hub.export.triton import (
    TritonModelSpec,
    TritonOptions,
    export_triton,
    parse_config,
    preferred_sizes,
    read_config,
    render_config,
    triton_model_name,
)

Kind = model_config_pb2.ModelInstanceGroup.Kind


def test_onnx_model_repository_single_file(source_for, tmp_path):
    source = source_for("myresnet50")
    repo = tmp_path / "repo"
    result = export_triton(source, repo, OnnxOptions(exporter="torchscript", img_size=IMG),
                           TritonOptions(max_batch_size=16, preferred_batch_sizes=(4, 16), max_queue_delay_us=250,
                                         instance_count=2, instance_kind="cpu"))
    assert result.verified
    model_dir = repo / "myresnet50_onnx"
    assert tree(repo) == ["myresnet50_onnx", "myresnet50_onnx/1", "myresnet50_onnx/1/model.onnx",
                          "myresnet50_onnx/README.md", "myresnet50_onnx/config.pbtxt",
                          "myresnet50_onnx/labels.txt", "myresnet50_onnx/manifest.json"]
    config = read_config(model_dir / "config.pbtxt")
    assert config.name == "myresnet50_onnx"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 16
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("input", model_config_pb2.TYPE_FP32, [3, *IMG])]
    assert [(o.name, o.data_type, list(o.dims), o.label_filename) for o in config.output] == [
        ("logits", model_config_pb2.TYPE_FP32, [1000], "labels.txt")]
    # Triton's classification extension returns these names: ImageNet's for a 1000-class head without recorded names
    labels = (model_dir / "labels.txt").read_text().splitlines()
    assert len(labels) == 1000 and labels[0] == "tench, Tinca tinca"
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, Kind.KIND_CPU)]
    readme = (model_dir / "README.md").read_text()
    for needle in ('InferInput("input"', '"FP32"', "InferRequestedOutput(\"logits\")",
                   "tritonserver --model-repository",
                   "myresnet50_onnx", f"input_size=(3, {IMG[0]}, {IMG[1]})", "mean=(0.485, 0.456, 0.406)"):
        assert needle in readme, needle
    # What Triton would load: the file in the version directory runs and has the configured IO.
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, *IMG)
    with torch.no_grad():
        assert np.abs(session.run(["logits"], {"input": x.numpy()})[0] - source.model(x).numpy()).max() < 1e-4
    assert leftover_staging(repo) == []


def test_external_data_uses_the_directory_form(source_for, tmp_path):
    repo = tmp_path / "repo"
    export_triton(source_for("myresnet18"), repo, OnnxOptions(exporter="torchscript", img_size=IMG, single_file=False))
    version_dir = repo / "myresnet18_onnx" / "1"
    assert sorted(p.name for p in (version_dir / "model.onnx").iterdir()) == ["model.onnx", "model.onnx.data"]
    ort.InferenceSession(str(version_dir / "model.onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    config = read_config(repo / "myresnet18_onnx" / "config.pbtxt")
    assert config.max_batch_size == 32 and list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert config.instance_group[0].kind == Kind.KIND_AUTO


def test_static_batch_model_has_no_triton_batching(source_for, tmp_path):
    repo = tmp_path / "repo"
    export_triton(source_for("myresnet18"), repo, OnnxOptions(exporter="torchscript", img_size=IMG,
                                                              dynamic_batch=False, batch_size=2),
                  TritonOptions(model_name="r18.tv_in1k"))
    config = read_config(repo / "r18_tv_in1k_onnx" / "config.pbtxt")
    assert config.max_batch_size == 0
    assert list(config.input[0].dims) == [2, 3, *IMG] and list(config.output[0].dims) == [2, 1000]
    assert not config.HasField("dynamic_batching")


def test_existing_model_directory_is_kept_without_force(source_for, tmp_path):
    from resnet_hub.export.errors import OutputExistsError

    repo = tmp_path / "repo"
    (repo / "myresnet18_onnx").mkdir(parents=True)
    (repo / "myresnet18_onnx" / "config.pbtxt").write_text("old")
    with pytest.raises(OutputExistsError, match="--force"):
        export_triton("myresnet18", repo, OnnxOptions(img_size=IMG))
    assert (repo / "myresnet18_onnx" / "config.pbtxt").read_text() == "old"
    export_triton(source_for("myresnet18"), repo, OnnxOptions(exporter="torchscript", img_size=IMG), force=True)
    assert read_config(repo / "myresnet18_onnx" / "config.pbtxt").platform == "onnxruntime_onnx"
    assert leftover_staging(repo) == []


def test_tensorrt_plan_config_renders_and_parses():
    spec = TritonModelSpec(name="m_tensorrt", platform="tensorrt_plan", max_batch_size=32, input_dims=(3, 224, 224),
                           output_dims=(1000,), preferred_batch_sizes=(8, 32), instance_kind="KIND_GPU")
    config = parse_config(render_config(spec))
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 32
    assert config.instance_group[0].kind == Kind.KIND_GPU
    assert list(config.input[0].dims) == [3, 224, 224]


def test_bad_config_text_is_rejected_by_the_protobuf():
    from google.protobuf.text_format import ParseError

    with pytest.raises(ParseError):
        parse_config('name: "x"\nmax_batch_sise: 4\n')


def test_preferred_sizes_and_names():
    assert preferred_sizes(32, None, 8) == (8, 32)
    assert preferred_sizes(0, (4,), 8) == ()
    with pytest.raises(ValueError, match="outside 1..max_batch_size"):
        preferred_sizes(8, (16,), None)
    assert triton_model_name("myresnet50.a1_in1k", "onnx") == "myresnet50_a1_in1k_onnx"


def test_with_tensorrt_fails_cleanly_where_tensorrt_or_cuda_is_missing(tmp_path):
    import importlib.util

    from resnet_hub.errors import ResNetHubError

    if importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available():
        pytest.skip("TensorRT and CUDA are present: covered by the GPU tests")
    with pytest.raises(ResNetHubError, match=r"resnet-hub\[tensorrt\]|NVIDIA GPU"):
        export_triton("myresnet18", tmp_path / "repo", OnnxOptions(img_size=IMG), TritonOptions(include_tensorrt=True))
    assert tree(tmp_path) == []


@pytest.mark.parametrize("embed", [False, True], ids=["float-input", "pixel-input"])
def test_readme_client_code_sends_what_the_model_was_verified_on(embed, digits_model, tmp_path):
    """The README's Python block, run as a client would (up to the Triton call) on a real image file, builds the
    batch the model in the repository expects: its logits equal PyTorch's on timm's own transform of that file."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from timm.data import create_transform

    from resnet_hub.export.source import load_model_source

    image_path = tmp_path / "digit.png"
    Image.fromarray(np.uint8(load_digits().images[7] * 255 / 16)).convert("RGB").resize((40, 40)).save(image_path)
    source = load_model_source("myresnet18", weights=digits_model)
    repo = tmp_path / "repo"
    export_triton(source, repo, OnnxOptions(img_size=(32, 32), embed_preprocessing=embed))
    model_dir = repo / "myresnet18_onnx"
    code = (model_dir / "README.md").read_text().split("```python\n")[1].split("```")[0]
    client_side = code.split("client = ")[0].replace('"image.jpg"', repr(str(image_path)))
    namespace: dict = {}
    exec(compile(client_side, "README.md", "exec"), namespace)
    batch = namespace["batch"]
    assert batch.dtype == (np.uint8 if embed else np.float32)
    assert batch.shape == ((1, 32, 32, 3) if embed else (1, 3, 32, 32))

    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    sent = session.run(["logits"], {"input": batch})[0]
    timm_transform = create_transform(**source.data_config((32, 32)))
    with torch.no_grad():
        reference = source.model(timm_transform(Image.open(image_path).convert("RGB")).unsqueeze(0)).numpy()
    assert sent.argmax() == reference.argmax() == 7  # a trained model, a real 7
    assert np.abs(sent - reference).max() < 1e-4 * np.ptp(reference)
