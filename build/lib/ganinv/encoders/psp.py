"""pSp encoders (Richardson et al. 2021): the FPN `GradualStyleEncoder` and the last-layer W / W+ variants."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.stylegan2.layers import EqualLinear

from .ir_se import WIDTHS, check_input_size, make_body, make_input_layer, stage_ends


def _log2(n: int, what: str) -> int:
    k = int(round(math.log2(n))) if n > 0 else -1
    if k < 0 or 2**k != n:
        raise ValueError(f"{what} must be a power of two, got {n}")
    return k


class GradualStyleBlock(nn.Module):
    """map2style: log2(spatial) stride-2 3x3 convs + LeakyReLU(0.01) down to 1x1, then an EqualLinear."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        self.out_c = out_c
        layers: list[nn.Module] = []
        for i in range(max(_log2(spatial, "map2style spatial size"), 1)):
            layers += [nn.Conv2d(in_c if i == 0 else out_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if x.shape[-2:] != (1, 1):
            raise ValueError(f"map2style head reduced its input to {tuple(x.shape[-2:])}, not 1x1: the encoder was "
                             "built for another input size; pass input_size= matching the images.")
        return self.linear(x.flatten(1))


def upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """FPN merge: bilinear (align_corners=True) resize of the coarser map to the lateral one, then add."""
    return F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral


class IRSEFeatures(nn.Module):
    """IR-SE stem + body shared by the pSp-family encoders; keys `input_layer.*`, `body.*`."""

    def __init__(self, num_layers: int, mode: str, input_nc: int, widths: Sequence[int]):
        super().__init__()
        self.input_layer = make_input_layer(input_nc, widths[0])
        self.body = make_body(num_layers, mode, widths)
        self.taps = stage_ends(num_layers)[1:]  # c1 (1/4), c2 (1/8), c3 (1/16)

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[c1, c2, c3]: outputs of the last unit of stages 2, 3, 4."""
        x, feats = self.input_layer(x), []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self.taps:
                feats.append(x)
        return feats


class GradualStyleEncoder(IRSEFeatures):
    """FPN encoder: coarse heads (styles 0-2) read c3, middle (3-6) p2, fine (7+) p1; returns [B, n_styles, dim]."""

    def __init__(self, num_layers: int = 50, mode: str = "ir_se", input_nc: int = 3, n_styles: int = 18,
                 style_dim: int = 512, widths: Sequence[int] = WIDTHS, input_size: int = 256,
                 coarse_ind: int = 3, middle_ind: int = 7):
        super().__init__(num_layers, mode, input_nc, widths)
        _log2(input_size, "input_size")
        self.n_styles, self.style_dim, self.input_size = n_styles, style_dim, input_size
        self.coarse_ind, self.middle_ind = coarse_ind, middle_ind
        spatial = [input_size // 16 if i < coarse_ind else input_size // 8 if i < middle_ind else input_size // 4
                   for i in range(n_styles)]
        self.styles = nn.ModuleList(GradualStyleBlock(widths[3], style_dim, s) for s in spatial)
        self.latlayer1 = nn.Conv2d(widths[2], widths[3], 1)
        self.latlayer2 = nn.Conv2d(widths[1], widths[3], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        c1, c2, c3 = self.pyramid(x)
        p2 = upsample_add(c3, self.latlayer1(c2))
        p1 = upsample_add(p2, self.latlayer2(c1))
        feats = [c3 if i < self.coarse_ind else p2 if i < self.middle_ind else p1 for i in range(self.n_styles)]
        return torch.stack([head(f) for head, f in zip(self.styles, feats)], dim=1)


class BackboneEncoderUsingLastLayerIntoW(IRSEFeatures):
    """pSp `learn_in_w`: global average of the last feature map -> one w, returned as [B, style_dim]."""

    def __init__(self, num_layers: int = 50, mode: str = "ir_se", input_nc: int = 3, style_dim: int = 512,
                 widths: Sequence[int] = WIDTHS, input_size: int = 256):
        super().__init__(num_layers, mode, input_nc, widths)
        self.input_size = input_size
        self.output_pool = nn.AdaptiveAvgPool2d(1)
        self.linear = EqualLinear(widths[3], style_dim, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        x = self.body(self.input_layer(x))
        return self.linear(self.output_pool(x).flatten(1))


class BackboneEncoderUsingLastLayerIntoWPlus(IRSEFeatures):
    """pSp W+ baseline: BN, 7x7 pool and a linear of the last map -> all n_styles codes at once."""

    def __init__(self, num_layers: int = 50, mode: str = "ir_se", input_nc: int = 3, n_styles: int = 18,
                 style_dim: int = 512, widths: Sequence[int] = WIDTHS, input_size: int = 256):
        super().__init__(num_layers, mode, input_nc, widths)
        self.n_styles, self.style_dim, self.input_size = n_styles, style_dim, input_size
        self.output_layer_2 = nn.Sequential(nn.BatchNorm2d(widths[3]), nn.AdaptiveAvgPool2d(7), nn.Flatten(),
                                            nn.Linear(widths[3] * 49, style_dim))
        self.linear = EqualLinear(style_dim, style_dim * n_styles, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        x = self.output_layer_2(self.body(self.input_layer(x)))
        return self.linear(x).view(-1, self.n_styles, self.style_dim)
