"""ReStyle (Alaluf et al. 2021): residual encoders on [image, current reconstruction] (the loop: `ReStyleModule`).

All map2style heads read the final 1/16 feature map (no FPN). The IR-SE backbone keeps pSp's key names; the
ResNet34 backbone keeps torchvision's (`conv1`, `bn1`, `relu` = PReLU, `body.{i}` = BasicBlocks, no max-pool).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from .e4e import INFERENCE_STAGE, progressive_codes
from .ir_se import WIDTHS, check_input_size, make_body, make_input_layer
from .psp import GradualStyleBlock

RESNET34_BLOCKS = (3, 4, 6, 3)


class _Heads(nn.Module):
    """n_styles map2style heads on one feature map; plain (all heads) or e4e-progressive (w0 + offsets)."""

    progressive_stage: int | None = None

    def _init_heads(self, width: int, n_styles: int, style_dim: int, input_size: int, progressive: bool,
                    progressive_stage: int | None) -> None:
        self.n_styles, self.style_dim, self.input_size = n_styles, style_dim, input_size
        self.styles = nn.ModuleList(GradualStyleBlock(width, style_dim, input_size // 16) for _ in range(n_styles))
        if progressive:
            self.progressive_stage = max(INFERENCE_STAGE, n_styles) if progressive_stage is None else progressive_stage

    def _codes(self, feats: torch.Tensor) -> torch.Tensor:
        if self.progressive_stage is None:
            return torch.stack([head(feats) for head in self.styles], dim=1)
        w0 = self.styles[0](feats)
        return progressive_codes(w0, lambda i: self.styles[i](feats), self.n_styles, int(self.progressive_stage))


class BackboneEncoder(_Heads):
    """IR-SE backbone, 6-channel input; `forward(cat([x, y_hat], 1))` returns the residual [B, n_styles, dim]."""

    def __init__(self, num_layers: int = 50, mode: str = "ir_se", input_nc: int = 6, n_styles: int = 18,
                 style_dim: int = 512, widths: Sequence[int] = WIDTHS, input_size: int = 256):
        super().__init__()
        self.input_layer = make_input_layer(input_nc, widths[0])
        self.body = make_body(num_layers, mode, widths)
        self._init_heads(widths[3], n_styles, style_dim, input_size, False, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        return self._codes(self.body(self.input_layer(x)))


class ResNetBackboneEncoder(_Heads):
    """ResNet34 layout: 7x7/2 stem + PReLU, 3/4/6/3 BasicBlocks (no max-pool), heads on the 1/16 map."""

    def __init__(self, input_nc: int = 6, n_styles: int = 18, style_dim: int = 512,
                 widths: Sequence[int] = WIDTHS, input_size: int = 256, blocks: Sequence[int] = RESNET34_BLOCKS):
        super().__init__()
        self.conv1 = nn.Conv2d(input_nc, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.PReLU(widths[0])
        self.body = nn.Sequential(*_resnet_units(widths, blocks))
        self._init_heads(widths[3], n_styles, style_dim, input_size, False, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        return self._codes(self.body(self.relu(self.bn1(self.conv1(x)))))


class ProgressiveBackboneEncoder(BackboneEncoder):
    """ReStyle-e4e IR-SE encoder: same keys as BackboneEncoder, output w0 + active offsets (int stage)."""

    def __init__(self, *args, progressive_stage: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.progressive_stage = max(INFERENCE_STAGE, self.n_styles) if progressive_stage is None else progressive_stage


class ResNetProgressiveBackboneEncoder(ResNetBackboneEncoder):
    """ReStyle-e4e ResNet34 encoder: same keys as ResNetBackboneEncoder, progressive output."""

    def __init__(self, *args, progressive_stage: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.progressive_stage = max(INFERENCE_STAGE, self.n_styles) if progressive_stage is None else progressive_stage


def _resnet_units(widths: Sequence[int], blocks: Sequence[int]) -> list[nn.Module]:
    """torchvision's `_make_layer` for BasicBlock: stride 2 and a 1x1 conv + BN downsample opening stages 2-4."""
    units, in_ch = [], widths[0]
    for stage, (width, n) in enumerate(zip(widths, blocks)):
        for k in range(n):
            stride = 2 if stage > 0 and k == 0 else 1
            down = None
            if stride != 1 or in_ch != width:
                down = nn.Sequential(nn.Conv2d(in_ch, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
            units.append(BasicBlock(in_ch, width, stride, down))
            in_ch = width
    return units
