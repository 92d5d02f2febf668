"""ResNetV2: pre-activation bottlenecks ('Identity Mappings in Deep Residual Networks').

Two layouts exist in the wild and both are supported, because their checkpoints are not interchangeable:
timm's (stride in the first block of each stage, no conv biases) and Keras Applications' (stride in the
last block of a stage, a max-pool shortcut there, biases on convs that no norm follows, zero-padded stem
pool). Module names are our own; ``converters.timm_resnetv2`` maps timm's keys onto them. Constructors take
timm's ``device`` / ``dtype`` factory arguments; annotations stay real objects ``torch.jit.script`` can read.
"""

from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .model_api import TimmModelMixin
from .layers import DropPath, build_classifier, check_input


class PreActBottleneck(nn.Module):
    """norm-relu-conv x3 around an identity shortcut; the projection shortcut sees the pre-activation."""

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        project: bool = False,
        output_bias: bool = False,
        norm_eps: float = 1e-5,
        drop_path: float = 0.0,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        dd: Dict[str, Any] = dict(device=device, dtype=dtype)
        out_chs = planes * self.expansion
        self.norm1 = nn.BatchNorm2d(in_chs, eps=norm_eps, **dd)
        self.conv1 = nn.Conv2d(in_chs, planes, 1, bias=False, **dd)
        self.norm2 = nn.BatchNorm2d(planes, eps=norm_eps, **dd)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False, **dd)
        self.norm3 = nn.BatchNorm2d(planes, eps=norm_eps, **dd)
        self.conv3 = nn.Conv2d(planes, out_chs, 1, bias=output_bias, **dd)
        self.downsample: Optional[nn.Module]
        self.pool_shortcut: Optional[nn.Module]
        if project:
            self.downsample = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=output_bias, **dd)
            self.pool_shortcut = None
        else:
            self.downsample = None
            # Keras subsamples an identity shortcut with a 1x1 max-pool when the block strides.
            self.pool_shortcut = nn.MaxPool2d(1, stride) if stride > 1 else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preact = F.relu(self.norm1(x))
        if self.downsample is not None:
            shortcut = self.downsample(preact)
        elif self.pool_shortcut is not None:
            shortcut = self.pool_shortcut(x)
        else:
            shortcut = x
        x = self.conv1(preact)
        x = self.conv2(F.relu(self.norm2(x)))
        x = self.drop_path(self.conv3(F.relu(self.norm3(x))))
        x += shortcut  # in place: saves allocating a full activation per block
        return x


class ResNetV2(TimmModelMixin, nn.Module):
    """Pre-activation ResNet with bottleneck blocks; children are declared in forward order."""

    def __init__(
        self,
        layers: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        stem_width: int = 64,
        norm_eps: float = 1e-5,
        keras_layout: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = True,
        model_name: str = "ResNetV2",
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers must list 4 stage depths, got {tuple(layers)}")
        dd: Dict[str, Any] = dict(device=device, dtype=dtype)
        self.model_name = model_name
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.conv1 = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=keras_layout, **dd)
        # Keras pads with zeros before pooling un-normalised stem outputs, which can be negative, so a
        # -inf padded torch max-pool would differ at the borders.
        self.maxpool = (
            nn.Sequential(nn.ZeroPad2d(1), nn.MaxPool2d(3, 2)) if keras_layout else nn.MaxPool2d(3, 2, padding=1)
        )
        self.feature_info = [dict(num_chs=stem_width, reduction=2, module="conv1")]

        total_blocks = sum(layers)
        block_index = 0
        in_chs = stem_width
        reduction = 4
        for stage_index, (depth, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            out_chs = planes * PreActBottleneck.expansion
            blocks = []
            for i in range(depth):
                if keras_layout:
                    stride = 2 if (i == depth - 1 and stage_index < 3) else 1
                else:
                    stride = 2 if (i == 0 and stage_index > 0) else 1
                blocks.append(
                    PreActBottleneck(
                        in_chs,
                        planes,
                        stride=stride,
                        project=i == 0,
                        output_bias=keras_layout,
                        norm_eps=norm_eps,
                        drop_path=drop_path_rate * block_index / max(total_blocks - 1, 1),
                        **dd,
                    )
                )
                reduction *= stride
                in_chs = out_chs
                block_index += 1
            name = f"layer{stage_index + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=out_chs, reduction=reduction, module=name))

        self.norm = nn.BatchNorm2d(in_chs, eps=norm_eps, **dd)
        self.act = nn.ReLU(inplace=True)
        self.num_features = in_chs
        self.global_pool, self.fc = build_classifier(self.num_features, num_classes, global_pool, **dd)
        self.head_hidden_size = self.num_features * self.global_pool.feature_multiplier
        self.init_weights(zero_init_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # eager-only check; TorchScript does not compile this branch
            check_input(x, self.in_chans, self.model_name)
        x = self.maxpool(self.conv1(x))
        return self.act(self.norm(self.run_stages(x)))
