"""Triton Inference Server model repositories for the ONNX model and, when built, the TensorRT plan.

Layout (ready for ``tritonserver --model-repository REPO``)::

    REPO/<name>_onnx/config.pbtxt          platform "onnxruntime_onnx"
    REPO/<name>_onnx/1/model.onnx          single file, or a directory 1/model.onnx/ holding model.onnx and
                                           model.onnx.data when the weights are external
    REPO/<name>_tensorrt/config.pbtxt      platform "tensorrt_plan"
    REPO/<name>_tensorrt/1/model.plan
    each model directory also has manifest.json and README.md (tritonclient call and preprocessing).

Configs are rendered from a :class:`TritonModelSpec` and parsed back with the official model-config protobuf
(``tritonclient.grpc.model_config_pb2``) before anything is written, so a config Triton would reject never
lands in the repository. Each model directory is built aside and swapped in whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from resnet_hub.errors import MissingDependencyError

from .errors import ExportOptionError, ProfileShapeError
from .files import StagedTree, refuse_overwrite, staging_prefix
from .manifest import build_manifest, file_entries, write_manifest
from .names import (
    CONFIG_FILE,
    ENGINE_FILE,
    FORMAT_TRITON_ONNX,
    FORMAT_TRITON_TENSORRT,
    INPUT_NAME,
    LABELS_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    OUTPUT_NAME,
)
from .onnx import OnnxOptions, Progress, manifest_extra, manifest_preprocessing, options_dict, write_verified_onnx
from .result import Artifact, ExportResult
from .source import ModelSource, load_model_source

README_FILE = "README.md"
INSTANCE_KINDS = {"auto": "KIND_AUTO", "cpu": "KIND_CPU", "gpu": "KIND_GPU"}
DEFAULT_MAX_BATCH = 32


@dataclass(frozen=True)
class TritonOptions:
    """Options of ``resnet-hub export --format triton``."""

    model_name: str | None = None  # default: the variant name, made Triton-safe
    max_batch_size: int | None = None  # default: the TensorRT profile max, else 32
    preferred_batch_sizes: tuple[int, ...] | None = None
    max_queue_delay_us: int = 100
    instance_count: int = 1
    instance_kind: str = "auto"  # ONNX model only; TensorRT plans always run on the GPU
    include_tensorrt: bool = False
    version: int = 1


@dataclass(frozen=True)
class TritonModelSpec:
    """Everything a config.pbtxt says, in one place."""

    name: str
    platform: str  # 'onnxruntime_onnx' | 'tensorrt_plan'
    max_batch_size: int  # 0: the model has no batch axis Triton may use (static-batch export)
    input_dims: tuple[int, ...]  # without the batch axis when max_batch_size > 0
    output_dims: tuple[int, ...]
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 100
    instance_count: int = 1
    instance_kind: str = "KIND_AUTO"
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    data_type: str = "TYPE_FP32"  # the output's; and the input's unless input_data_type says otherwise
    input_data_type: str | None = None  # "TYPE_UINT8": preprocessing embedded, input dims [H, W, 3]
    label_filename: str | None = LABELS_FILE  # classification extension: class names, one per line


def labels_text(source: ModelSource) -> str:
    """labels.txt for Triton's classification extension: the weights' class names, or 'class N'."""
    from resnet_hub.tasks.predict import class_names

    names = source.label_names if source.label_names else class_names(source.num_classes)
    return "".join(" ".join(str(name).split()) + "\n" for name in names)  # one line each, whatever the name


def triton_model_name(name: str, suffix: str) -> str:
    """Triton model names become directory names and URL parts: keep them to [A-Za-z0-9_-]."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") + f"_{suffix}"


def preferred_sizes(max_batch_size: int, hints: tuple[int, ...] | None, opt: int | None = None) -> tuple[int, ...]:
    """Preferred dynamic-batching sizes: the given ones, or the engine's optimum and the maximum."""
    if max_batch_size == 0:
        return ()
    sizes = hints if hints else tuple(s for s in (opt, max_batch_size) if s)
    bad = [s for s in sizes if not 1 <= s <= max_batch_size]
    if bad:
        raise ExportOptionError(f"preferred batch sizes {bad} are outside 1..max_batch_size ({max_batch_size})")
    return tuple(sorted(set(sizes)))


def render_config(spec: TritonModelSpec) -> str:
    """config.pbtxt text for ``spec`` (protobuf text format)."""

    def dims(values: tuple[int, ...]) -> str:
        return "[ " + ", ".join(str(int(v)) for v in values) + " ]"

    lines = [
        f'name: "{spec.name}"',
        f'platform: "{spec.platform}"',
        f"max_batch_size: {spec.max_batch_size}",
        "input [",
        "  {",
        f'    name: "{spec.input_name}"',
        f"    data_type: {spec.input_data_type or spec.data_type}",
        f"    dims: {dims(spec.input_dims)}",
        "  }",
        "]",
        "output [",
        "  {",
        f'    name: "{spec.output_name}"',
        f"    data_type: {spec.data_type}",
        f"    dims: {dims(spec.output_dims)}",
        f'    label_filename: "{spec.label_filename}"' if spec.label_filename else "",
        "  }",
        "]",
    ]
    if spec.max_batch_size > 0:
        lines += [
            "dynamic_batching {",
            f"  preferred_batch_size: {dims(spec.preferred_batch_sizes)}" if spec.preferred_batch_sizes else "",
            f"  max_queue_delay_microseconds: {spec.max_queue_delay_us}",
            "}",
        ]
    lines += [
        "instance_group [",
        "  {",
        f"    count: {spec.instance_count}",
        f"    kind: {spec.instance_kind}",
        "  }",
        "]",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def parse_config(text: str):
    """Parse config.pbtxt text with Triton's own ModelConfig protobuf (raises on anything Triton would reject
    at parse time: unknown fields, wrong types, bad enum names)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise MissingDependencyError("tritonclient[grpc]", "triton", "Validating Triton model configs") from exc
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def validated_config(spec: TritonModelSpec) -> str:
    text = render_config(spec)
    config = parse_config(text)
    if config.name != spec.name or config.platform != spec.platform:
        raise ExportOptionError(f"config.pbtxt for {spec.name} did not round-trip through ModelConfig")
    return text


def client_readme(spec: TritonModelSpec, preprocessing: dict[str, Any], model_file: str) -> str:
    """A README for the model directory: how to serve it and call it with tritonclient.

    Its Python block is runnable as written (tests execute its preprocessing part): a client that copies it sends
    exactly what the model was verified on, normalised floats or, with preprocessing embedded, uint8 pixels."""
    pixels = spec.input_data_type == "TYPE_UINT8"
    size = preprocessing["input_size"]
    mean = [round(m, 6) for m in preprocessing["mean"]]
    std = [round(s, 6) for s in preprocessing["std"]]
    resize = (f"resize + center crop to {size[1]}x{size[2]} ({preprocessing['interpolation']}, crop_pct "
              f"{preprocessing['crop_pct']})")
    if pixels:
        title_note = " with **preprocessing inside the graph**"
        input_line = "UINT8, shape {shape} (NHWC: decoded RGB pixels, batch axis first)"
        steps = (f"- done inside the graph: cast to float32, / 255, (x - mean) / std with mean {mean} and std {std},\n"
                 "  NHWC -> NCHW (timm's ToTensor + Normalize, bit for bit). Do **not** normalise on the client.\n"
                 f"- done by the client: decode to RGB, {resize}, send the uint8 pixels.")
        prepare = (f"from timm.data.transforms_factory import transforms_imagenet_eval\n\n"
                   f"resize_and_crop = transforms_imagenet_eval(img_size={tuple(size[1:])}, "
                   f"crop_pct={preprocessing['crop_pct']}, interpolation={preprocessing['interpolation']!r}, "
                   f"crop_mode={preprocessing['crop_mode']!r}).transforms[:2]\n"
                   'image = Image.open("image.jpg").convert("RGB")\n'
                   "for step in resize_and_crop:\n"
                   "    image = step(image)\n"
                   f"batch = np.asarray(image, dtype=np.uint8)[None]  # (1, {size[1]}, {size[2]}, 3)")
    else:
        title_note = ""
        input_line = "FP32, shape {shape} (NCHW; batch axis first)"
        steps = (f"- preprocessing ({preprocessing['style']}, from {preprocessing['source']}): RGB, {resize},\n"
                 f"  scale to [0, 1], then (x - mean) / std with mean {mean} and std {std}")
        prepare = ("from timm.data import create_transform\n\n"
                   f"transform = create_transform(input_size={tuple(size)}, "
                   f"interpolation={preprocessing['interpolation']!r}, mean={tuple(mean)}, std={tuple(std)}, "
                   f"crop_pct={preprocessing['crop_pct']}, crop_mode={preprocessing['crop_mode']!r})\n"
                   'batch = transform(Image.open("image.jpg").convert("RGB")).unsqueeze(0).numpy().astype(np.float32)')
    shape = [1, *spec.input_dims] if spec.max_batch_size > 0 else list(spec.input_dims)
    batching = (f"max_batch_size {spec.max_batch_size}; dynamic batching prefers {list(spec.preferred_batch_sizes)} "
                f"and waits at most {spec.max_queue_delay_us} us" if spec.max_batch_size else
                "static batch: send exactly the shape below")
    wire_type = "UINT8" if pixels else "FP32"
    return f"""# {spec.name}

Triton model ({spec.platform}) exported by resnet-hub{title_note}; `{model_file}` in version directory `1/`.
See `manifest.json` for the weights hash, verification figures and versions.

Serve the repository (this directory's parent):

```bash
tritonserver --model-repository $(realpath ..)
```

- input `{spec.input_name}`: {input_line.format(shape=shape)}, {batching}
- output `{spec.output_name}`: FP32, shape [batch, {', '.join(map(str, spec.output_dims))}]
  (logits; softmax for probabilities)
{steps}

```python
import numpy as np
import tritonclient.grpc as grpcclient
from PIL import Image
{prepare}

client = grpcclient.InferenceServerClient("localhost:8001")
request = grpcclient.InferInput("{spec.input_name}", list(batch.shape), "{wire_type}")
request.set_data_from_numpy(batch)
result = client.infer("{spec.name}", [request], outputs=[grpcclient.InferRequestedOutput("{spec.output_name}")])
logits = result.as_numpy("{spec.output_name}")  # (batch, {spec.output_dims[0]})
top5 = np.argsort(-logits, axis=1)[:, :5]
```
"""


def export_triton(
    model: str | ModelSource,
    repository: str | os.PathLike,
    onnx_options: OnnxOptions = OnnxOptions(),
    options: TritonOptions = TritonOptions(),
    tensorrt_options: Any = None,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Write ``<name>_onnx`` (and with ``include_tensorrt`` ``<name>_tensorrt``) into the model repository."""
    onnx_options.validate()
    if options.instance_kind not in INSTANCE_KINDS:
        raise ExportOptionError(f"Unknown instance kind '{options.instance_kind}'; choose one of: "
                                f"{', '.join(INSTANCE_KINDS)}")
    if options.instance_count < 1 or options.max_queue_delay_us < 0 or options.version < 1:
        raise ExportOptionError("instance_count and version must be >= 1 and the queue delay >= 0")
    parse_config('name: "probe"')  # tritonclient missing -> clear error before any work
    from .onnx import require_onnx_stack

    require_onnx_stack()
    repository = Path(repository)
    base = options.model_name or (model.name if isinstance(model, ModelSource) else model)
    names = [triton_model_name(base, "onnx")] + ([triton_model_name(base, "tensorrt")] if options.include_tensorrt
                                                 else [])
    if not force:
        refuse_overwrite([repository / n for n in names if (repository / n).exists()])

    trt_plan = None
    if options.include_tensorrt:
        from .tensorrt import TensorRTOptions, check_tensorrt_ready, plan_for

        from .tensorrt_plan import resolve_profile

        tensorrt_options = tensorrt_options or TensorRTOptions()
        resolve_profile(min_batch=tensorrt_options.min_batch, opt_batch=tensorrt_options.opt_batch,
                        max_batch=tensorrt_options.max_batch, dynamic_batch=onnx_options.dynamic_batch,
                        static_batch=onnx_options.batch_size)
        trt = check_tensorrt_ready(tensorrt_options)
        trt_plan = plan_for(tensorrt_options, onnx_options, trt.__version__)
        if trt_plan.profile.min != 1 and onnx_options.dynamic_batch:
            raise ProfileShapeError("Triton sends any batch from 1 to max_batch_size: build with --min-batch 1")
    max_batch = _max_batch(options, onnx_options, trt_plan)

    source = model if isinstance(model, ModelSource) else load_model_source(model, weights=weights,
                                                                            pretrained=pretrained)
    preprocessing = manifest_preprocessing(source, onnx_options)
    artifacts: list[Artifact] = []
    verifications = []
    manifests: dict[str, Any] = {}
    version = str(options.version)
    with StagedTree(repository / names[0], force=force) as tree:
        # ONNX model: single file, or directory form when the weights are external.
        target_dir = tree / version if onnx_options.single_file else tree / version / ONNX_FILE
        target_dir.mkdir(parents=True)
        verified = write_verified_onnx(source, target_dir, onnx_options, progress)
        verifications.append(verified.verification)
        sample = verified.sample_shape  # (C, H, W), or (H, W, 3) uint8 pixels with embedded preprocessing
        spec = TritonModelSpec(
            name=names[0], platform="onnxruntime_onnx", max_batch_size=max_batch,
            input_dims=sample if max_batch else (onnx_options.batch_size, *sample),
            input_data_type="TYPE_UINT8" if verified.pixel_input is not None else None,
            output_dims=(source.num_classes,) if max_batch else (onnx_options.batch_size, source.num_classes),
            preferred_batch_sizes=preferred_sizes(max_batch, options.preferred_batch_sizes,
                                                  trt_plan.profile.opt if trt_plan else 8 if max_batch >= 8 else None),
            max_queue_delay_us=options.max_queue_delay_us, instance_count=options.instance_count,
            instance_kind=INSTANCE_KINDS[options.instance_kind])
        (tree / CONFIG_FILE).write_text(validated_config(spec))
        (tree / README_FILE).write_text(client_readme(spec, preprocessing, ONNX_FILE))
        (tree / LABELS_FILE).write_text(labels_text(source))
        # Everything Triton serves is hashed: the graph(s), the config it parses, the labels it returns, the README.
        manifest = build_manifest(source, fmt=FORMAT_TRITON_ONNX, options=options_dict(onnx_options),
                                  signature=verified.signature, preprocessing=preprocessing,
                                  verifications=[verified.verification],
                                  files=[tree / version, tree / CONFIG_FILE, tree / README_FILE, tree / LABELS_FILE],
                                  root=tree, extra=dict(triton=asdict(spec), **manifest_extra(verified)))
        write_manifest(tree / MANIFEST_FILE, manifest)
        manifests[names[0]] = manifest
        specs = [spec]
        if trt_plan is not None:
            specs.append(_stage_tensorrt(source, repository, names[1], onnx_options, tensorrt_options, spec,
                                         preprocessing, version, force, progress, verifications, manifests))
    for spec in specs:
        model_dir = repository / spec.name
        artifacts.append(Artifact.of(model_dir / CONFIG_FILE, "triton-config"))
        model_file = ENGINE_FILE if spec.platform == "tensorrt_plan" else ONNX_FILE
        artifacts.append(Artifact.of(model_dir / version / model_file,
                                     "engine" if spec.platform == "tensorrt_plan" else "onnx"))
        artifacts.append(Artifact.of(model_dir / README_FILE, "readme"))
        artifacts.append(Artifact.of(model_dir / MANIFEST_FILE, "manifest"))
    hint = (f"tritonserver --model-repository {repository.resolve()}\n"
            f"# then call '{specs[0].name}' with tritonclient: see {repository / specs[0].name / README_FILE}")
    return ExportResult(format="triton", model=source.name, output=repository, artifacts=tuple(artifacts),
                        verifications=tuple(verifications), manifest=manifests, timings=dict(verified.timings),
                        run_hint=hint, accuracy=(verified.accuracy,) if verified.accuracy is not None else (),
                        warnings=verified.warnings)


def _max_batch(options: TritonOptions, onnx_options: OnnxOptions, trt_plan) -> int:
    if not onnx_options.dynamic_batch:
        if options.max_batch_size not in (None, 0):
            raise ExportOptionError("A static-batch export is served with max_batch_size 0; export with "
                                    "--dynamic-batch for Triton's dynamic batching")
        return 0
    if trt_plan is not None:
        limit = trt_plan.profile.max
        if options.max_batch_size is not None and options.max_batch_size > limit:
            raise ProfileShapeError(f"max_batch_size {options.max_batch_size} exceeds the engine profile's max batch "
                                    f"{limit}; rebuild with --max-batch {options.max_batch_size}")
        return limit if options.max_batch_size is None else options.max_batch_size
    value = DEFAULT_MAX_BATCH if options.max_batch_size is None else options.max_batch_size
    if value < 1:
        raise ExportOptionError(f"max_batch_size must be >= 1, got {value}")
    return value


def _stage_tensorrt(source, repository: Path, name: str, onnx_options: OnnxOptions, tensorrt_options, onnx_spec,
                    preprocessing, version: str, force: bool, progress, verifications: list, manifests: dict):
    """Build the engine (verified by export_tensorrt) and lay it out as a second model directory."""
    from .tensorrt import export_tensorrt

    with StagedTree(repository / name, force=force) as tree:
        build_dir = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=tree))
        try:
            result = export_tensorrt(source, build_dir / "out", onnx_options, tensorrt_options, progress=progress)
            (tree / version).mkdir()
            os.replace(build_dir / "out" / ENGINE_FILE, tree / version / ENGINE_FILE)
            verifications.extend(result.verifications[1:])
            manifest = dict(result.manifest)
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
        spec = replace(onnx_spec, name=name, platform="tensorrt_plan", instance_kind="KIND_GPU")
        (tree / CONFIG_FILE).write_text(validated_config(spec))
        (tree / README_FILE).write_text(client_readme(spec, preprocessing, ENGINE_FILE))
        (tree / LABELS_FILE).write_text(labels_text(source))
        manifest["triton"] = asdict(spec)
        manifest["format"] = FORMAT_TRITON_TENSORRT
        # This directory serves the engine only: its files are what is here, and the ONNX graph's parity run (a
        # build input, not shipped) moves beside the engine record.
        manifest["files"] = file_entries(tree, [tree / version, tree / CONFIG_FILE, tree / README_FILE,
                                                tree / LABELS_FILE])
        shipped = [v for v in manifest["verification"] if v["artifact"] == ENGINE_FILE]
        manifest["tensorrt"]["build_input_verification"] = [v for v in manifest["verification"] if v not in shipped]
        manifest["verification"] = shipped
        write_manifest(tree / MANIFEST_FILE, manifest)
        manifests[name] = manifest
    return spec


def read_config(path: str | os.PathLike):
    """Parse an existing config.pbtxt (for tests and tooling)."""
    return parse_config(Path(path).read_text())


def config_as_dict(config) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return json.loads(json.dumps(MessageToDict(config, preserving_proto_field_name=True)))
