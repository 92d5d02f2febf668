"""The variant table: the one place that says what every model is.

timm registration, ``hubconf.py``, the CLI, the converters and the README all read this table, so a
variant's architecture, its pretrained weights and the preprocessing those weights expect never drift
apart. Pretrained tags point at safetensors that timm already publishes on the Hugging Face Hub in a
key-compatible layout, and their preprocessing values are copied from timm's own pretrained cfgs (a test
checks they still agree).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
# Keras 'caffe' mode subtracts these BGR means from 0-255 pixels and does not scale. Our converted
# weights take RGB input (the converter flips the first conv's input channels), so the same maths in
# timm's [0, 1] RGB pipeline is: mean = RGB means / 255, std = 1 / 255.
CAFFE_MEAN_RGB = (123.68 / 255, 116.779 / 255, 103.939 / 255)
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)

Family = Literal["resnet", "resnetv2"]
BlockType = Literal["basic", "bottleneck"]
CheckpointLayout = Literal["native", "timm_resnetv2"]


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a weight set, in timm's ``pretrained_cfg`` vocabulary."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    test_input_size: tuple[int, int, int] | None = None
    crop_pct: float = 0.875
    test_crop_pct: float | None = None
    crop_mode: str = "center"
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # A name users recognise ('imagenet', 'inception', 'caffe', 'tf'); mean/std above are authoritative.
    style: str = "imagenet"

    def to_json(self) -> str:
        """The form recorded in safetensors metadata (key ``preprocessing``) by converters and publish."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Preprocessing":
        """Inverse of :meth:`to_json`; raises ValueError or TypeError for a malformed record."""
        values = json.loads(text)
        if not isinstance(values, dict):
            raise TypeError(f"expected a JSON object, got {type(values).__name__}")
        # JSON has no tuples: restore them so records compare equal to the table's values.
        tuple_fields = ("input_size", "test_input_size", "mean", "std")
        fields: dict[str, Any] = {k: tuple(v) if k in tuple_fields and v is not None else v for k, v in values.items()}
        return cls(**fields)

    def to_timm(self) -> dict[str, Any]:
        cfg = dict(
            input_size=self.input_size,
            crop_pct=self.crop_pct,
            crop_mode=self.crop_mode,
            interpolation=self.interpolation,
            mean=self.mean,
            std=self.std,
        )
        if self.test_input_size is not None:
            cfg["test_input_size"] = self.test_input_size
        if self.test_crop_pct is not None:
            cfg["test_crop_pct"] = self.test_crop_pct
        return cfg


@dataclass(frozen=True)
class PretrainedTag:
    """One published weight set for a variant."""

    tag: str
    hf_hub_id: str
    preprocessing: Preprocessing
    license: str
    origin: str
    layout: CheckpointLayout = "native"
    num_classes: int = 1000
    description: str = ""


@dataclass(frozen=True)
class VariantConfig:
    """Everything needed to build one registered variant."""

    name: str
    family: Family
    layers: tuple[int, ...]
    description: str
    block: BlockType = "bottleneck"
    cardinality: int = 1
    base_width: int = 64
    stem_width: int = 64
    deep_stem: bool = False
    avg_down: bool = False
    # 'v1' puts the stride on the first 1x1 conv (original paper / Keras); 'v1.5' on the 3x3.
    stride_in_1x1: bool = False
    conv_bias: bool = False
    norm_eps: float = 1e-5
    se: bool = False
    # ResNetV2 (pre-activation) only: Keras' layout strides in the last block of a stage, gives a bias to
    # convs not followed by a norm and pads the stem max-pool with zeros.
    keras_v2_layout: bool = False
    timm_name: str | None = None
    torchvision_name: str | None = None
    keras_name: str | None = None
    default_preprocessing: Preprocessing = field(default_factory=Preprocessing)
    pretrained: tuple[PretrainedTag, ...] = ()

    @property
    def default_tag(self) -> PretrainedTag | None:
        return self.pretrained[0] if self.pretrained else None

    def tag(self, tag: str) -> PretrainedTag:
        """The table's weight set ``tag``; an unknown tag raises ``UnknownTagError`` (a KeyError)."""
        from ..errors import UnknownTagError

        for candidate in self.pretrained:
            if candidate.tag == tag:
                return candidate
        if not self.pretrained:
            raise UnknownTagError(
                f"{self.name} has no published pretrained weights, so '{self.name}.{tag}' does not exist. Use "
                f"'{self.name}' with a converted file (`resnet-hub convert`, then --weights FILE)."
            )
        import difflib

        known = [t.tag for t in self.pretrained]
        close = difflib.get_close_matches(tag, known, n=1)
        hint = f" Did you mean {self.name}.{close[0]}?" if close else ""
        raise UnknownTagError(f"{self.name} has no pretrained tag '{tag}' (known: {', '.join(known)}).{hint}")

    @property
    def first_conv(self) -> str:
        return "conv1.0" if self.deep_stem else "conv1"

    def model_args(self) -> dict[str, Any]:
        """Keyword arguments of the model class (ResNet or ResNetV2) for this variant."""
        if self.family == "resnetv2":
            return dict(
                layers=self.layers,
                stem_width=self.stem_width,
                norm_eps=self.norm_eps,
                keras_layout=self.keras_v2_layout,
            )
        return dict(
            block=self.block,
            layers=self.layers,
            cardinality=self.cardinality,
            base_width=self.base_width,
            stem_width=self.stem_width,
            deep_stem=self.deep_stem,
            avg_down=self.avg_down,
            stride_in_1x1=self.stride_in_1x1,
            conv_bias=self.conv_bias,
            norm_eps=self.norm_eps,
            se=self.se,
        )


# --- preprocessing recipes, as timm publishes them for each weight set -------------------------------
TV1 = Preprocessing()
TV2 = Preprocessing(input_size=(3, 176, 176), test_input_size=(3, 224, 224), test_crop_pct=0.965)
RSB_A1 = Preprocessing(
    test_input_size=(3, 288, 288), crop_pct=0.95, test_crop_pct=1.0, interpolation="bicubic"
)
RA2 = Preprocessing(test_input_size=(3, 288, 288), test_crop_pct=0.95, interpolation="bicubic")
RA2_256 = Preprocessing(
    input_size=(3, 256, 256),
    test_input_size=(3, 320, 320),
    crop_pct=0.95,
    test_crop_pct=1.0,
    interpolation="bicubic",
)
RSB_A1H_INCEPTION = replace(RSB_A1, mean=INCEPTION_MEAN, std=INCEPTION_STD, style="inception")
KERAS_CAFFE = Preprocessing(
    crop_pct=0.875, interpolation="bilinear", mean=CAFFE_MEAN_RGB, std=CAFFE_STD, style="caffe"
)
KERAS_TF = Preprocessing(
    crop_pct=0.875, interpolation="bilinear", mean=INCEPTION_MEAN, std=INCEPTION_STD, style="tf"
)

TV_ORIGIN = "https://github.com/pytorch/vision"
TIMM_ORIGIN = "https://github.com/huggingface/pytorch-image-models"
WSL_ORIGIN = "https://github.com/facebookresearch/WSL-Images"


def _tv(timm_name: str, version: int = 1) -> PretrainedTag:
    tag = "tv_in1k" if version == 1 else "tv2_in1k"
    return PretrainedTag(
        tag=tag,
        hf_hub_id=f"timm/{timm_name}.{tag}",
        preprocessing=TV1 if version == 1 else TV2,
        license="bsd-3-clause",
        origin=TV_ORIGIN,
        description=f"torchvision {'IMAGENET1K_V1' if version == 1 else 'IMAGENET1K_V2'} weights",
    )


def _timm(timm_name: str, tag: str, preprocessing: Preprocessing, layout: CheckpointLayout = "native") -> PretrainedTag:
    return PretrainedTag(
        tag=tag,
        hf_hub_id=f"timm/{timm_name}.{tag}",
        preprocessing=preprocessing,
        license="apache-2.0",
        origin=TIMM_ORIGIN,
        layout=layout,
        description=f"timm '{tag}' training recipe",
    )


VARIANTS: dict[str, VariantConfig] = {}


def _add(cfg: VariantConfig) -> None:
    assert cfg.name not in VARIANTS, cfg.name
    VARIANTS[cfg.name] = cfg


STAGES_18 = (2, 2, 2, 2)
STAGES_34_50 = (3, 4, 6, 3)
STAGES_101 = (3, 4, 23, 3)
STAGES_152 = (3, 8, 36, 3)

# --- ResNet v1.5 (stride on the 3x3 conv), the torchvision / timm default ----------------------------
_add(VariantConfig(
    name="myresnet18",
    family="resnet",
    layers=STAGES_18,
    description="ResNet-18 v1.5",
    block="basic",
    timm_name="resnet18",
    torchvision_name="resnet18",
    pretrained=(
        _timm("resnet18", "a1_in1k", RSB_A1),
        _tv("resnet18"),
    ),
))
_add(VariantConfig(
    name="myresnet34",
    family="resnet",
    layers=STAGES_34_50,
    description="ResNet-34 v1.5",
    block="basic",
    timm_name="resnet34",
    torchvision_name="resnet34",
    pretrained=(
        _timm("resnet34", "a1_in1k", RSB_A1),
        _tv("resnet34"),
    ),
))
_add(VariantConfig(
    name="myresnet50",
    family="resnet",
    layers=STAGES_34_50,
    description="ResNet-50 v1.5",
    timm_name="resnet50",
    torchvision_name="resnet50",
    pretrained=(
        _timm("resnet50", "a1_in1k", RSB_A1),
        _tv("resnet50", version=2),
        _tv("resnet50"),
    ),
))
_add(VariantConfig(
    name="myresnet101",
    family="resnet",
    layers=STAGES_101,
    description="ResNet-101 v1.5",
    timm_name="resnet101",
    torchvision_name="resnet101",
    pretrained=(
        _timm("resnet101", "a1h_in1k", RSB_A1),
        _tv("resnet101", version=2),
        _tv("resnet101"),
    ),
))
_add(VariantConfig(
    name="myresnet152",
    family="resnet",
    layers=STAGES_152,
    description="ResNet-152 v1.5",
    timm_name="resnet152",
    torchvision_name="resnet152",
    pretrained=(
        _timm("resnet152", "a1h_in1k", RSB_A1),
        _tv("resnet152", version=2),
        _tv("resnet152"),
    ),
))

# --- ResNet-D: deep 3x3 stem (32, 32, 64) and average-pool shortcut downsampling ----------------------
_add(VariantConfig(
    name="myresnet50d",
    family="resnet",
    layers=STAGES_34_50,
    description="ResNet-50-D (deep stem, avg-pool downsample)",
    stem_width=32,
    deep_stem=True,
    avg_down=True,
    timm_name="resnet50d",
    pretrained=(
        _timm("resnet50d", "ra2_in1k", RA2),
        _timm("resnet50d", "a1_in1k", RSB_A1),
    ),
))
_add(VariantConfig(
    name="myresnet101d",
    family="resnet",
    layers=STAGES_101,
    description="ResNet-101-D (deep stem, avg-pool downsample)",
    stem_width=32,
    deep_stem=True,
    avg_down=True,
    timm_name="resnet101d",
    pretrained=(
        _timm("resnet101d", "ra2_in1k", RA2_256),
    ),
))

# --- ResNeXt: grouped 3x3 convs ----------------------------------------------------------------------
_add(VariantConfig(
    name="myresnext50_32x4d",
    family="resnet",
    layers=STAGES_34_50,
    description="ResNeXt-50 32x4d",
    cardinality=32,
    base_width=4,
    timm_name="resnext50_32x4d",
    torchvision_name="resnext50_32x4d",
    pretrained=(
        _timm("resnext50_32x4d", "a1h_in1k", RSB_A1),
        _tv("resnext50_32x4d", version=2),
        _tv("resnext50_32x4d"),
    ),
))
_add(VariantConfig(
    name="myresnext101_32x8d",
    family="resnet",
    layers=STAGES_101,
    description="ResNeXt-101 32x8d",
    cardinality=32,
    base_width=8,
    timm_name="resnext101_32x8d",
    torchvision_name="resnext101_32x8d",
    pretrained=(
        _tv("resnext101_32x8d", version=2),
        _tv("resnext101_32x8d"),
        PretrainedTag(
            tag="fb_wsl_ig1b_ft_in1k",
            hf_hub_id="timm/resnext101_32x8d.fb_wsl_ig1b_ft_in1k",
            preprocessing=TV1,
            license="cc-by-nc-4.0",
            origin=WSL_ORIGIN,
            description="Facebook WSL Instagram-1B pretrained, ImageNet-1k fine-tuned",
        ),
    ),
))
_add(VariantConfig(
    name="myresnext101_64x4d",
    family="resnet",
    layers=STAGES_101,
    description="ResNeXt-101 64x4d",
    cardinality=64,
    base_width=4,
    timm_name="resnext101_64x4d",
    torchvision_name="resnext101_64x4d",
    pretrained=(
        _timm("resnext101_64x4d", "c1_in1k", RSB_A1),
        _tv("resnext101_64x4d"),
    ),
))

# --- Wide ResNet: twice the bottleneck width ---------------------------------------------------------
_add(VariantConfig(
    name="mywide_resnet50_2",
    family="resnet",
    layers=STAGES_34_50,
    description="Wide ResNet-50-2",
    base_width=128,
    timm_name="wide_resnet50_2",
    torchvision_name="wide_resnet50_2",
    pretrained=(
        _timm("wide_resnet50_2", "racm_in1k", RA2),
        _tv("wide_resnet50_2", version=2),
        _tv("wide_resnet50_2"),
    ),
))
_add(VariantConfig(
    name="mywide_resnet101_2",
    family="resnet",
    layers=STAGES_101,
    description="Wide ResNet-101-2",
    base_width=128,
    timm_name="wide_resnet101_2",
    torchvision_name="wide_resnet101_2",
    pretrained=(
        _tv("wide_resnet101_2", version=2),
        _tv("wide_resnet101_2"),
    ),
))

# --- Squeeze-and-Excitation --------------------------------------------------------------------------
_add(VariantConfig(
    name="myseresnet50",
    family="resnet",
    layers=STAGES_34_50,
    description="SE-ResNet-50",
    se=True,
    timm_name="seresnet50",
    pretrained=(
        _timm("seresnet50", "ra2_in1k", RA2),
        _timm("seresnet50", "a1_in1k", RSB_A1),
    ),
))
_add(VariantConfig(
    name="myseresnext50_32x4d",
    family="resnet",
    layers=STAGES_34_50,
    description="SE-ResNeXt-50 32x4d",
    cardinality=32,
    base_width=4,
    se=True,
    timm_name="seresnext50_32x4d",
    pretrained=(
        _timm("seresnext50_32x4d", "racm_in1k", RA2),
    ),
))

# --- The original v1 layout (stride on the first 1x1, conv bias) exactly as Keras Applications builds it
_add(VariantConfig(
    name="myresnet50_v1",
    family="resnet",
    layers=STAGES_34_50,
    description="ResNet-50 v1 (stride in the 1x1 conv, conv bias), Keras Applications layout",
    stride_in_1x1=True,
    conv_bias=True,
    norm_eps=1.001e-5,
    keras_name="ResNet50",
    default_preprocessing=KERAS_CAFFE,
))
_add(VariantConfig(
    name="myresnet101_v1",
    family="resnet",
    layers=STAGES_101,
    description="ResNet-101 v1 (stride in the 1x1 conv, conv bias), Keras Applications layout",
    stride_in_1x1=True,
    conv_bias=True,
    norm_eps=1.001e-5,
    keras_name="ResNet101",
    default_preprocessing=KERAS_CAFFE,
))
_add(VariantConfig(
    name="myresnet152_v1",
    family="resnet",
    layers=STAGES_152,
    description="ResNet-152 v1 (stride in the 1x1 conv, conv bias), Keras Applications layout",
    stride_in_1x1=True,
    conv_bias=True,
    norm_eps=1.001e-5,
    keras_name="ResNet152",
    default_preprocessing=KERAS_CAFFE,
))

# --- ResNetV2: pre-activation bottlenecks, timm's layout (stride in the first block of a stage) ---------
_add(VariantConfig(
    name="myresnetv2_50",
    family="resnetv2",
    layers=STAGES_34_50,
    description="ResNetV2-50 (pre-activation)",
    timm_name="resnetv2_50",
    default_preprocessing=RSB_A1H_INCEPTION,
    pretrained=(
        _timm("resnetv2_50", "a1h_in1k", RSB_A1H_INCEPTION, layout="timm_resnetv2"),
    ),
))
_add(VariantConfig(
    name="myresnetv2_101",
    family="resnetv2",
    layers=STAGES_101,
    description="ResNetV2-101 (pre-activation)",
    timm_name="resnetv2_101",
    default_preprocessing=RSB_A1H_INCEPTION,
    pretrained=(
        _timm("resnetv2_101", "a1h_in1k", RSB_A1H_INCEPTION, layout="timm_resnetv2"),
    ),
))

# --- ResNetV2 as Keras Applications builds it (stride in the last block of a stage, biases, zero-padded pool)
_add(VariantConfig(
    name="myresnetv2_50_keras",
    family="resnetv2",
    layers=STAGES_34_50,
    description="ResNetV2-50 (pre-activation), Keras Applications layout",
    norm_eps=1.001e-5,
    keras_v2_layout=True,
    keras_name="ResNet50V2",
    default_preprocessing=KERAS_TF,
))
_add(VariantConfig(
    name="myresnetv2_101_keras",
    family="resnetv2",
    layers=STAGES_101,
    description="ResNetV2-101 (pre-activation), Keras Applications layout",
    norm_eps=1.001e-5,
    keras_v2_layout=True,
    keras_name="ResNet101V2",
    default_preprocessing=KERAS_TF,
))
_add(VariantConfig(
    name="myresnetv2_152_keras",
    family="resnetv2",
    layers=STAGES_152,
    description="ResNetV2-152 (pre-activation), Keras Applications layout",
    norm_eps=1.001e-5,
    keras_v2_layout=True,
    keras_name="ResNet152V2",
    default_preprocessing=KERAS_TF,
))

# Every stride-2 step of every variant (7x7 / 3x3 stem conv, the stem max-pool, the strided convs and pools of
# the stages) rounds up, so the final feature map is ceil(input / 32) on each side.
OUTPUT_STRIDE = 32


def feature_map_size(input_size: tuple[int, int, int]) -> tuple[int, int]:
    """Height and width of ``forward_features``' output for a (C, H, W) input: timm's ``pool_size``."""
    return (-(-input_size[1] // OUTPUT_STRIDE), -(-input_size[2] // OUTPUT_STRIDE))


def pool_sizes(preprocessing: Preprocessing) -> dict[str, tuple[int, int]]:
    """timm's ``pool_size`` (and ``test_pool_size`` when there is a test size) for images prepared this way:
    whoever rewrites a cfg's input sizes (fine-tuning at another size, publishing) takes these along."""
    sizes = dict(pool_size=feature_map_size(preprocessing.input_size))
    if preprocessing.test_input_size is not None:
        sizes["test_pool_size"] = feature_map_size(preprocessing.test_input_size)
    return sizes


def pretrained_cfg_for(variant: VariantConfig, tag: PretrainedTag | None) -> dict[str, Any]:
    """timm ``pretrained_cfg`` of one weight set (or of the untrained variant when ``tag`` is None).

    ``pool_size`` (and ``test_pool_size``) follow the weight set's input sizes: a 176 px tag has a 6 x 6 map.
    Lives here, not in ``registry``, because it only reads the table: ``resnet-hub info`` shows it without
    importing timm (``registry`` re-exports it for the code that registers with timm)."""
    preprocessing = tag.preprocessing if tag else variant.default_preprocessing
    cfg: dict[str, Any] = dict(
        num_classes=tag.num_classes if tag else 1000,
        first_conv=variant.first_conv,
        classifier="fc",
        **pool_sizes(preprocessing),
        **preprocessing.to_timm(),
    )
    if tag is not None:
        cfg.update(hf_hub_id=tag.hf_hub_id, license=tag.license, origin_url=tag.origin, notes=(tag.description,))
    return cfg


def table_variant(name: str) -> VariantConfig:
    """A variant of the table by name: ``myresnet50`` or ``myresnet50.tv_in1k`` (the tag must be in the table).

    The table knows nothing of the Hub: ``resnet_hub.get_variant`` (``lookup``) also resolves
    ``hf-hub:ORG/NAME`` names and calls this for the rest. Unknown names and tags raise typed errors that say
    what exists."""
    from ..errors import ModelArgumentError, UnknownModelError

    if not isinstance(name, str) or not name:
        raise ModelArgumentError(f"A model name is a string such as 'myresnet50' or 'hf-hub:ORG/NAME'; got {name!r}. "
                                 "Run `resnet-hub list` to see all variants.")
    base, _, tag = name.partition(".")
    if base not in VARIANTS:
        raise UnknownModelError(name, list(VARIANTS))
    variant = VARIANTS[base]
    if tag:
        variant.tag(tag)
    return variant


def variant_names() -> list[str]:
    return list(VARIANTS)
