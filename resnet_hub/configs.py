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
        return cls(**{k: tuple(v) if k in tuple_fields and v is not None else v for k, v in values.items()})

    def to_timm(self) -> dict:
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
        from .errors import UnknownTagError

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

    def model_args(self) -> dict:
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


def _timm(timm_name: str, tag: str, preprocessing: Preprocessing, layout: CheckpointLayout = "native"):
    return PretrainedTag(
        tag=tag,
        hf_hub_id=f"timm/{timm_name}.{tag}",
        preprocessing=preprocessing,
        license="apache-2.0",
        origin=TIMM_ORIGIN,
        layout=layout,
        description=f"timm '{tag}' training recipe",
    )


def _resnet(name: str, timm_name: str, layers, description: str, tags, tv_name=None, **arch) -> VariantConfig:
    return VariantConfig(
        name=name,
        family="resnet",
        layers=tuple(layers),
        description=description,
        timm_name=timm_name,
        torchvision_name=tv_name,
        pretrained=tuple(tags),
        **arch,
    )


VARIANTS: dict[str, VariantConfig] = {}


def _add(cfg: VariantConfig) -> None:
    assert cfg.name not in VARIANTS, cfg.name
    VARIANTS[cfg.name] = cfg


# ResNet v1.5 (stride on the 3x3 conv), the torchvision / timm default.
_add(_resnet("myresnet18", "resnet18", (2, 2, 2, 2), "ResNet-18 v1.5", [_timm("resnet18", "a1_in1k", RSB_A1), _tv("resnet18")], tv_name="resnet18", block="basic"))
_add(_resnet("myresnet34", "resnet34", (3, 4, 6, 3), "ResNet-34 v1.5", [_timm("resnet34", "a1_in1k", RSB_A1), _tv("resnet34")], tv_name="resnet34", block="basic"))
_add(_resnet("myresnet50", "resnet50", (3, 4, 6, 3), "ResNet-50 v1.5", [_timm("resnet50", "a1_in1k", RSB_A1), _tv("resnet50", 2), _tv("resnet50")], tv_name="resnet50"))
_add(_resnet("myresnet101", "resnet101", (3, 4, 23, 3), "ResNet-101 v1.5", [_timm("resnet101", "a1h_in1k", RSB_A1), _tv("resnet101", 2), _tv("resnet101")], tv_name="resnet101"))
_add(_resnet("myresnet152", "resnet152", (3, 8, 36, 3), "ResNet-152 v1.5", [_timm("resnet152", "a1h_in1k", RSB_A1), _tv("resnet152", 2), _tv("resnet152")], tv_name="resnet152"))
# ResNet-D: deep 3x3 stem (32, 32, 64) and average-pool shortcut downsampling.
_add(_resnet("myresnet50d", "resnet50d", (3, 4, 6, 3), "ResNet-50-D (deep stem, avg-pool downsample)", [_timm("resnet50d", "ra2_in1k", RA2), _timm("resnet50d", "a1_in1k", RSB_A1)], stem_width=32, deep_stem=True, avg_down=True))
_add(_resnet("myresnet101d", "resnet101d", (3, 4, 23, 3), "ResNet-101-D (deep stem, avg-pool downsample)", [_timm("resnet101d", "ra2_in1k", RA2_256)], stem_width=32, deep_stem=True, avg_down=True))
# ResNeXt: grouped 3x3 convs.
_add(_resnet("myresnext50_32x4d", "resnext50_32x4d", (3, 4, 6, 3), "ResNeXt-50 32x4d", [_timm("resnext50_32x4d", "a1h_in1k", RSB_A1), _tv("resnext50_32x4d", 2), _tv("resnext50_32x4d")], tv_name="resnext50_32x4d", cardinality=32, base_width=4))
_add(_resnet("myresnext101_32x8d", "resnext101_32x8d", (3, 4, 23, 3), "ResNeXt-101 32x8d", [_tv("resnext101_32x8d", 2), _tv("resnext101_32x8d"), replace(_tv("resnext101_32x8d"), tag="fb_wsl_ig1b_ft_in1k", hf_hub_id="timm/resnext101_32x8d.fb_wsl_ig1b_ft_in1k", license="cc-by-nc-4.0", origin=WSL_ORIGIN, description="Facebook WSL Instagram-1B pretrained, ImageNet-1k fine-tuned")], tv_name="resnext101_32x8d", cardinality=32, base_width=8))
_add(_resnet("myresnext101_64x4d", "resnext101_64x4d", (3, 4, 23, 3), "ResNeXt-101 64x4d", [_timm("resnext101_64x4d", "c1_in1k", RSB_A1), _tv("resnext101_64x4d")], tv_name="resnext101_64x4d", cardinality=64, base_width=4))
# Wide ResNet: twice the bottleneck width.
_add(_resnet("mywide_resnet50_2", "wide_resnet50_2", (3, 4, 6, 3), "Wide ResNet-50-2", [_timm("wide_resnet50_2", "racm_in1k", RA2), _tv("wide_resnet50_2", 2), _tv("wide_resnet50_2")], tv_name="wide_resnet50_2", base_width=128))
_add(_resnet("mywide_resnet101_2", "wide_resnet101_2", (3, 4, 23, 3), "Wide ResNet-101-2", [_tv("wide_resnet101_2", 2), _tv("wide_resnet101_2")], tv_name="wide_resnet101_2", base_width=128))
# Squeeze-and-Excitation.
_add(_resnet("myseresnet50", "seresnet50", (3, 4, 6, 3), "SE-ResNet-50", [_timm("seresnet50", "ra2_in1k", RA2), _timm("seresnet50", "a1_in1k", RSB_A1)], se=True))
_add(_resnet("myseresnext50_32x4d", "seresnext50_32x4d", (3, 4, 6, 3), "SE-ResNeXt-50 32x4d", [_timm("seresnext50_32x4d", "racm_in1k", RA2)], se=True, cardinality=32, base_width=4))
# The original v1 layout (stride on the first 1x1, conv bias) exactly as Keras Applications builds it.
for _depth, _layers in ((50, (3, 4, 6, 3)), (101, (3, 4, 23, 3)), (152, (3, 8, 36, 3))):
    _add(
        VariantConfig(
            name=f"myresnet{_depth}_v1",
            family="resnet",
            layers=_layers,
            description=f"ResNet-{_depth} v1 (stride in the 1x1 conv, conv bias), Keras Applications layout",
            stride_in_1x1=True,
            conv_bias=True,
            norm_eps=1.001e-5,
            keras_name=f"ResNet{_depth}",
            default_preprocessing=KERAS_CAFFE,
        )
    )
# ResNetV2: pre-activation bottlenecks, timm's layout (stride in the first block of a stage).
for _depth, _layers in ((50, (3, 4, 6, 3)), (101, (3, 4, 23, 3))):
    _add(
        VariantConfig(
            name=f"myresnetv2_{_depth}",
            family="resnetv2",
            layers=_layers,
            description=f"ResNetV2-{_depth} (pre-activation)",
            timm_name=f"resnetv2_{_depth}",
            default_preprocessing=RSB_A1H_INCEPTION,
            pretrained=(_timm(f"resnetv2_{_depth}", "a1h_in1k", RSB_A1H_INCEPTION, layout="timm_resnetv2"),),
        )
    )
# ResNetV2 as Keras Applications builds it (stride in the last block of a stage, biases, zero-padded pool).
for _depth, _layers in ((50, (3, 4, 6, 3)), (101, (3, 4, 23, 3)), (152, (3, 8, 36, 3))):
    _add(
        VariantConfig(
            name=f"myresnetv2_{_depth}_keras",
            family="resnetv2",
            layers=_layers,
            description=f"ResNetV2-{_depth} (pre-activation), Keras Applications layout",
            norm_eps=1.001e-5,
            keras_v2_layout=True,
            keras_name=f"ResNet{_depth}V2",
            default_preprocessing=KERAS_TF,
        )
    )


def pretrained_cfg_for(variant: VariantConfig, tag: PretrainedTag | None) -> dict[str, Any]:
    """timm ``pretrained_cfg`` of one weight set (or of the untrained variant when ``tag`` is None).

    Lives here, not in ``registry``, because it only reads the table: ``resnet-hub info`` shows it without
    importing timm (``registry`` re-exports it for the code that registers with timm)."""
    preprocessing = tag.preprocessing if tag else variant.default_preprocessing
    cfg: dict[str, Any] = dict(
        num_classes=tag.num_classes if tag else 1000,
        pool_size=(7, 7),
        first_conv=variant.first_conv,
        classifier="fc",
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
    from .errors import ModelArgumentError, UnknownModelError

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
