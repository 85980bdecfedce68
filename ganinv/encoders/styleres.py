"""StyleRes's networks (Pehlivan et al. 2023) with the official key names (the official modules live inside the
generator's 64-px synthesis block: `modify_feature_alignment`, `modify_feature_extraction`, `modify_feature_gates`).
E1 (`FeatureAlignment` + `FeatureExtraction`): the base encoder's features at the embedding resolution and the
generator's own features of the inverted codes -> the residual features the codes miss. E2 (`GateNetwork`): the
generator's features of the codes being rendered (edited or not) and E1's output -> a feature change and a gate:
features become features + gate · change. Official widths: 512 throughout, 64x64 from a 1024-px generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResLayers(nn.Module):
    """conv3x3 + LeakyReLU(0.2) + conv3x3 (stride here), plus a (1x1 conv) shortcut on change."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.shortcut_layer = nn.Identity() if in_ch == out_ch and stride == 1 else nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))
        self.res_layer = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.LeakyReLU(0.2),
                                       nn.Conv2d(out_ch, out_ch, 3, stride, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class FeatureAlignment(nn.Module):
    """[encoder features, generator features] -> aligned features: a small U-Net of ResLayers (two strided levels
    down, bilinear up with additive skips). (The official also defines a `dconv3` it never applies: left out.)"""

    def __init__(self, in_ch: int, out_ch: int, width: int):
        super().__init__()
        t = width
        self.first_layer = nn.Conv2d(in_ch, t, 1)
        self.conv1 = nn.Sequential(ResLayers(t, t, 1))
        self.conv2 = nn.Sequential(ResLayers(t, t, 2), ResLayers(t, t, 1))
        self.conv3 = nn.Sequential(ResLayers(t, t, 2), ResLayers(t, t, 1))
        self.dconv1 = nn.Sequential(ResLayers(t, t, 1), ResLayers(t, t, 1))
        self.dconv2 = nn.Sequential(ResLayers(t, t, 1), ResLayers(t, t, 1))
        self.out_layer = nn.Conv2d(t, out_ch, 1)

    def forward(self, encoder_feats: torch.Tensor, generator_feats: torch.Tensor) -> torch.Tensor:
        f1 = self.conv1(self.first_layer(torch.cat([encoder_feats, generator_feats], 1)))
        f2 = self.conv2(f1)
        f3 = self.conv3(f2)
        up = F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=True)
        d = F.interpolate(self.dconv1(up + f2), size=f1.shape[-2:], mode="bilinear", align_corners=True)
        return self.out_layer(self.dconv2(d + f1))


class FeatureExtraction(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, width: int):
        super().__init__()
        self.first_layer = nn.Conv2d(in_ch, width, 1)
        self.convs = nn.Sequential(ResLayers(width, width), ResLayers(width, out_ch), ResLayers(out_ch, out_ch))

    def forward(self, aligned: torch.Tensor) -> torch.Tensor:
        return self.convs(self.first_layer(aligned))


class GateNetwork(nn.Module):
    """(generator features, residual features) -> (change [B, C, r, r], gate [B, 1, r, r] in (0, 1))."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.down1 = nn.Conv2d(channels, half, 3, 1, 1)
        self.down2 = nn.Conv2d(channels, half, 3, 1, 1)
        self.convs = nn.Sequential(ResLayers(2 * half, channels), ResLayers(channels, channels),
                                   ResLayers(channels, channels))
        self.convs2 = nn.Sequential(ResLayers(2 * half, channels), ResLayers(channels, channels),
                                    ResLayers(channels, 1))
        self.sigmoid = nn.Sigmoid()

    def forward(self, generator_feats: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.down1(generator_feats), self.down2(residual)], 1)
        return self.convs(x), self.sigmoid(self.convs2(x))


class StyleResNets(nn.Module):
    """StyleRes's trained parts: E1 from the base encoder's `encoder_channels`-channel features and the generator's
    `channels`-channel ones, E2 on the generator's."""

    def __init__(self, encoder_channels: int, channels: int, width: int = 512):
        super().__init__()
        self.modify_feature_alignment = FeatureAlignment(encoder_channels + channels, channels, width)
        self.modify_feature_extraction = FeatureExtraction(channels, channels, width)
        self.modify_feature_gates = GateNetwork(channels)
