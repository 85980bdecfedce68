"""HFGI's networks (Wang et al. 2022) with the official key names: the consultation encoder (`ResidualEncoder`:
distortion map -> per-pixel scale and shift of the generator's features at one resolution) and the adaptive
distortion alignment module (`ResidualAligner`, "ADA": [distortion map, edited image] -> the distortion map
aligned to the edited image). Official sizes at 256-px inputs: features 64x64, 512 channels (a 1024-px
generator's at 64 px); here the features are a quarter of the input size with the generator's channels there."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.stylegan2.layers import EqualConv2d

from .ir_se import BottleneckIR


def _ir(in_ch: int, depth: int, stride: int) -> BottleneckIR:
    return BottleneckIR(in_ch, depth, stride, se=False)


def _stage(in_ch: int, depths: Sequence[int], stride: int) -> nn.Sequential:
    """IR units of `depths`, the first with `stride`."""
    units, c = [], in_ch
    for k, d in enumerate(depths):
        units.append(_ir(c, d, stride if k == 0 else 1))
        c = d
    return nn.Sequential(*units)


def _stem(in_ch: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width))


class ScaledLeakyReLU(nn.Module):
    def __init__(self, negative_slope: float = 0.2):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope) * math.sqrt(2)


class ResidualEncoder(nn.Module):
    """Ec: distortion map [B, 3, s, s] -> (scale, shift), each [B, channels, s/4, s/4]. The last convolution of
    each starts at zero (`start_at_base`), so that an untrained HFGI renders exactly its base's images (the official
    initialisation is random: random conditions that a short training spends its first steps undoing)."""

    def __init__(self, channels: int = 512, widths: Sequence[int] = (32, 48, 64), start_at_base: bool = True):
        super().__init__()
        a, b, c = widths
        self.conv_layer1 = _stem(3, a)
        self.conv_layer2 = _stage(a, (b, b, b), 2)
        self.conv_layer3 = _stage(b, (c, c, c), 2)
        for name in ("condition_scale3", "condition_shift3"):
            setattr(self, name, nn.Sequential(EqualConv2d(c, channels, 3, 1, 1), ScaledLeakyReLU(0.2),
                                              EqualConv2d(channels, channels, 3, 1, 1)))
            if start_at_base:
                nn.init.zeros_(getattr(self, name)[2].weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv_layer3(self.conv_layer2(self.conv_layer1(x)))
        size = feat.shape[-2:]  # the official resamples to 64x64, the size these features already have
        return (F.interpolate(self.condition_scale3(feat), size=size, mode="bilinear"),
                F.interpolate(self.condition_shift3(feat), size=size, mode="bilinear"))


class ResidualAligner(nn.Module):
    """ADA: [distortion map, image] [B, 6, s, s] -> the distortion map aligned to the image [B, 3, s, s] (a small
    IR U-Net: three strided stages down, three up with bilinear upsampling and skip concatenations)."""

    def __init__(self, widths: Sequence[int] = (16, 32, 48, 64)):
        super().__init__()
        a, b, c, d = widths
        self.conv_layer1 = _stem(6, a)
        self.conv_layer2 = _stage(a, (b, b, b), 2)
        self.conv_layer3 = _stage(b, (c, c, c), 2)
        self.conv_layer4 = _stage(c, (d, d, d), 2)
        self.dconv_layer1 = _stage(d + c, (d, b, b), 1)
        self.dconv_layer2 = _stage(b + b, (b, a, a), 1)
        self.dconv_layer3 = _stage(a + a, (a, 3, 3), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat1 = self.conv_layer1(x)
        feat2 = self.conv_layer2(feat1)
        feat3 = self.conv_layer3(feat2)
        feat4 = self.conv_layer4(feat3)

        def up(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=like.shape[-2:], mode="bilinear")

        d1 = self.dconv_layer1(torch.cat([up(feat4, feat3), feat3], 1))
        d2 = self.dconv_layer2(torch.cat([up(d1, feat2), feat2], 1))
        return self.dconv_layer3(torch.cat([up(d2, feat1), feat1], 1))


class HFGINets(nn.Module):
    """HFGI's trained parts: `residue` (the consultation encoder) and `grid_align` (ADA), the official names."""

    def __init__(self, channels: int, residue_widths: Sequence[int] = (32, 48, 64),
                 align_widths: Sequence[int] = (16, 32, 48, 64)):
        super().__init__()
        self.residue = ResidualEncoder(channels, residue_widths)
        self.grid_align = ResidualAligner(align_widths)
