"""ResNet v1 / v1.5, ResNet-D, ResNeXt, Wide ResNet and SE-ResNet in one config-driven class.

Blocks read like the papers (torchvision's style); module names follow timm's (and so torchvision's)
state-dict keys so their checkpoints load with ``strict=True``. Every constructor takes timm's ``device`` /
``dtype`` factory arguments, and the annotations stay real objects that ``torch.jit.script`` can read.
"""

from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple, Type, Union

import torch
from torch import nn

from .model_api import TimmModelMixin
from .layers import DropPath, SqueezeExcite, build_classifier, check_input


# timm's factory arguments: where (``device``, e.g. "meta") and in which dtype parameters are created.
FactoryKwargs = Dict[str, Any]


def conv3x3(
    in_chs: int, out_chs: int, stride: int = 1, groups: int = 1, bias: bool = False, **dd: Any
) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, groups=groups, bias=bias, **dd)


def conv1x1(in_chs: int, out_chs: int, stride: int = 1, bias: bool = False, **dd: Any) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=bias, **dd)


class ResidualBlock(nn.Module):
    """What every post-activation block does after its convolutions: SE, stochastic depth, shortcut."""

    if TYPE_CHECKING:  # for type checkers only: TorchScript reads class annotations and cannot type nn.Module
        se: Optional[nn.Module]
        downsample: Optional[nn.Module]
        drop_path: nn.Module

    def add_shortcut(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.drop_path(out)
        out += shortcut  # in place: saves allocating a full activation per block (~7% at batch 8 on CPU)
        return out


class BasicBlock(ResidualBlock):
    """Two 3x3 convs (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        cardinality: int = 1,
        base_width: int = 64,
        stride_in_1x1: bool = False,
        conv_bias: bool = False,
        norm_eps: float = 1e-5,
        se: bool = False,
        drop_path: float = 0.0,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        dd: FactoryKwargs = dict(device=device, dtype=dtype)
        if cardinality != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only cardinality=1 and base_width=64")
        self.conv1 = conv3x3(inplanes, planes, stride, bias=conv_bias, **dd)
        self.bn1 = nn.BatchNorm2d(planes, eps=norm_eps, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, bias=conv_bias, **dd)
        self.bn2 = nn.BatchNorm2d(planes, eps=norm_eps, **dd)
        self.se = SqueezeExcite(planes, **dd) if se else None
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(self.add_shortcut(out, x))


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand (ResNet-50 and deeper)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        cardinality: int = 1,
        base_width: int = 64,
        stride_in_1x1: bool = False,
        conv_bias: bool = False,
        norm_eps: float = 1e-5,
        se: bool = False,
        drop_path: float = 0.0,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        dd: FactoryKwargs = dict(device=device, dtype=dtype)
        width = int(planes * (base_width / 64.0)) * cardinality
        outplanes = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, stride_1x1, bias=conv_bias, **dd)
        self.bn1 = nn.BatchNorm2d(width, eps=norm_eps, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width, stride_3x3, groups=cardinality, bias=conv_bias, **dd)
        self.bn2 = nn.BatchNorm2d(width, eps=norm_eps, **dd)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = conv1x1(width, outplanes, bias=conv_bias, **dd)
        self.bn3 = nn.BatchNorm2d(outplanes, eps=norm_eps, **dd)
        self.se = SqueezeExcite(outplanes, **dd) if se else None
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(self.add_shortcut(out, x))


BLOCKS: Dict[str, Union[Type[BasicBlock], Type[Bottleneck]]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_downsample(
    in_chs: int, out_chs: int, stride: int, avg_down: bool, conv_bias: bool, norm_eps: float, **dd: Any
) -> nn.Sequential:
    """Projection shortcut: strided 1x1 conv, or (ResNet-D) average pool then 1x1 conv."""
    norm = nn.BatchNorm2d(out_chs, eps=norm_eps, **dd)
    if not avg_down:
        return nn.Sequential(conv1x1(in_chs, out_chs, stride, bias=conv_bias, **dd), norm)
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, conv1x1(in_chs, out_chs, bias=conv_bias, **dd), norm)


def make_stem(
    in_chans: int, stem_width: int, deep_stem: bool, conv_bias: bool, norm_eps: float = 1e-5, **dd: Any
) -> Tuple[nn.Module, int]:
    """7x7 conv, or (ResNet-D) three 3x3 convs; returns the module and its output channels."""
    if not deep_stem:
        return nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=conv_bias, **dd), stem_width
    out_chs = stem_width * 2
    return (
        nn.Sequential(
            nn.Conv2d(in_chans, stem_width, 3, stride=2, padding=1, bias=conv_bias, **dd),
            nn.BatchNorm2d(stem_width, eps=norm_eps, **dd),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, stem_width, 3, padding=1, bias=conv_bias, **dd),
            nn.BatchNorm2d(stem_width, eps=norm_eps, **dd),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, out_chs, 3, padding=1, bias=conv_bias, **dd),
        ),
        out_chs,
    )


class ResNet(TimmModelMixin, nn.Module):
    """A residual network whose every variant is chosen by arguments (see ``configs.VARIANTS``).

    The children are declared in forward order (stem, ``layer1``..``layer4``, head) because timm's
    ``features_only`` wrapper rebuilds the network from that order.
    """

    def __init__(
        self,
        layers: Sequence[int],
        block: str = "bottleneck",
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        cardinality: int = 1,
        base_width: int = 64,
        stem_width: int = 64,
        deep_stem: bool = False,
        avg_down: bool = False,
        stride_in_1x1: bool = False,
        conv_bias: bool = False,
        norm_eps: float = 1e-5,
        se: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = True,
        model_name: str = "ResNet",
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers must list 4 stage depths, got {tuple(layers)}")
        dd: FactoryKwargs = dict(device=device, dtype=dtype)
        block_cls = BLOCKS[block]
        self.model_name = model_name
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.conv1, inplanes = make_stem(in_chans, stem_width, deep_stem, conv_bias, norm_eps, **dd)
        self.bn1 = nn.BatchNorm2d(inplanes, eps=norm_eps, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=inplanes, reduction=2, module="act1")]

        total_blocks = sum(layers)
        block_index = 0
        reduction = 4
        for stage_index, (depth, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            stride = 1 if stage_index == 0 else 2
            reduction *= stride
            outplanes = planes * block_cls.expansion
            blocks = []
            for i in range(depth):
                block_stride = stride if i == 0 else 1
                downsample = None
                if i == 0 and (block_stride != 1 or inplanes != outplanes):
                    downsample = make_downsample(
                        inplanes, outplanes, block_stride, avg_down, conv_bias, norm_eps, **dd
                    )
                blocks.append(
                    block_cls(
                        inplanes,
                        planes,
                        stride=block_stride,
                        downsample=downsample,
                        cardinality=cardinality,
                        base_width=base_width,
                        stride_in_1x1=stride_in_1x1,
                        conv_bias=conv_bias,
                        norm_eps=norm_eps,
                        se=se,
                        drop_path=drop_path_rate * block_index / max(total_blocks - 1, 1),
                        **dd,
                    )
                )
                inplanes = outplanes
                block_index += 1
            name = f"layer{stage_index + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=outplanes, reduction=reduction, module=name))

        self.num_features = inplanes
        self.global_pool, self.fc = build_classifier(self.num_features, num_classes, global_pool, **dd)
        self.head_hidden_size = self.num_features * self.global_pool.feature_multiplier
        self.init_weights(zero_init_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # eager-only check; TorchScript does not compile this branch
            check_input(x, self.in_chans, self.model_name)
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        return self.run_stages(x)
