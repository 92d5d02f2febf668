"""The part of timm's model API that ResNet and ResNetV2 share (classifier, checkpointing, head).

``torch.jit.script`` compiles ``forward`` and what it calls from here, so the annotations are real objects
(no ``from __future__ import annotations``) and eager-only code sits behind ``torch.jit.is_scripting()``.
"""

from typing import TYPE_CHECKING, Dict, List, Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .layers import build_classifier, check_input_dtype


class TimmModelMixin:
    """Expects ``num_features``, ``drop_rate``, ``grad_checkpointing``, ``layer1``..``layer4``,
    ``global_pool``, ``fc`` and a ``forward_features`` on the class that uses it."""

    if TYPE_CHECKING:  # for type checkers only: TorchScript reads class annotations and cannot type nn.Module
        num_features: int
        head_hidden_size: int
        num_classes: int
        drop_rate: float
        grad_checkpointing: bool
        global_pool: nn.Module
        fc: nn.Module

    def init_weights(self, zero_init_last: bool = True) -> None:
        """He init for convs; optionally zero the last layer of each residual branch so every block
        starts as the identity, which stabilises early training ('Bag of Tricks', Goyal et al.)."""
        for module in self.modules():  # type: ignore[attr-defined]
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_last:
            for module in self.modules():  # type: ignore[attr-defined]
                if hasattr(module, "zero_init_last") and callable(module.zero_init_last):
                    module.zero_init_last()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, str]:
        return dict(stem=r"^conv1|bn1|maxpool", blocks=r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Swap the head, e.g. for fine-tuning on another label set (``num_classes=0`` drops it).

        ``global_pool=None`` keeps the current pooling (timm's contract), except that a model without pooling
        (``global_pool=''``) that is given classes again gets 'avg': a linear head needs pooled features (an
        explicit ``''`` with classes still raises). The new head is made on the model's device and in its dtype,
        so a bfloat16 or meta model stays one."""
        weight = next(self.parameters(), None)  # type: ignore[attr-defined]
        device = weight.device if weight is not None else None
        dtype = weight.dtype if weight is not None else None
        if global_pool is None:
            global_pool = self.global_pool.pool_type or ("avg" if num_classes > 0 else "")  # type: ignore
        self.num_classes = num_classes
        self.global_pool, self.fc = build_classifier(
            self.num_features, num_classes, global_pool, device=device, dtype=dtype  # type: ignore[arg-type]
        )
        self.head_hidden_size = self.num_features * self.global_pool.feature_multiplier
        self.global_pool.train(self.training)  # type: ignore[attr-defined]
        self.fc.train(self.training)  # type: ignore[attr-defined]

    @torch.jit.ignore
    def stages(self) -> List[nn.Module]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]  # type: ignore[attr-defined]

    def run_stages(self, x: torch.Tensor) -> torch.Tensor:
        """The residual stages, re-computed in backward instead of stored when checkpointing is on."""
        if self.grad_checkpointing and not torch.jit.is_scripting() and torch.is_grad_enabled():
            for stage in self.stages():
                for blk in stage:
                    x = checkpoint(blk, x, use_reentrant=False)
            return x
        # Spelled out rather than looped over stages(): TorchScript cannot iterate a list of modules.
        x = self.layer1(x)  # type: ignore[attr-defined]
        x = self.layer2(x)  # type: ignore[attr-defined]
        x = self.layer3(x)  # type: ignore[attr-defined]
        return self.layer4(x)  # type: ignore[attr-defined]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = nn.functional.dropout(x, p=self.drop_rate, training=self.training)  # type: ignore[attr-defined]
        return x if pre_logits else self.fc(x)

    @torch.jit.ignore
    def check_input_dtype(self, x: torch.Tensor) -> None:
        weight = next(self.parameters(), None)  # type: ignore[attr-defined]
        if weight is not None:
            check_input_dtype(x, weight.dtype, getattr(self, "model_name", type(self).__name__))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # TorchScript does not compile this branch
            self.check_input_dtype(x)
        return self.forward_head(self.forward_features(x))  # type: ignore[attr-defined]
