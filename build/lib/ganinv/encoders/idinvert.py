"""In-Domain GAN inversion's domain-guided encoder (Zhu et al. 2020), adapted to StyleGAN2 W+.

Choices made for StyleGAN2 (the original targets StyleGAN1, TensorFlow):

* Layout as the official encoder: a 3x3 conv stem at full resolution, then one residual block per halving
  (2x2 average pool first) down to 4x4, widths `channel_base * 2**k` capped at `channel_max` (64 ... 1024), and one
  bias-free dense layer from the 4x4 map to all codes at once. Batch norm after every conv and after the dense
  layer (the official training uses it), LeakyReLU(0.2).
* Output: `[B, n_styles, style_dim]` with StyleGAN2's `n_styles = 2 log2(size) - 2` (14 for 256 px, 18 for
  1024 px); the generator size is a parameter, independent of the input size (a 256-px encoder for a 1024-px
  generator, as in pSp). The codes are absolute W+ codes; the training method may add `latent_avg` (its choice,
  documented there) - the encoder itself has no notion of the generator.
* The paper's weight-scaled layers are plain convs here: with batch norm after every layer the scale is moot.
* Trained against the StyleGAN2 image discriminator of `ganinv.stylegan2` (In-Domain trains E against D).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .ir_se import check_input_size


def _norm(kind: str, channels: int, dims: int = 2) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch' or 'none', got {kind!r}")


class ConvBlock(nn.Sequential):
    """conv -> norm -> LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, norm: str):
        super().__init__(nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=norm == "none"),
                         _norm(norm, out_ch), nn.LeakyReLU(0.2))


class ResBlock(nn.Module):
    """Two 3x3 conv blocks (hidden width min(in, out)) plus a shortcut (1x1 conv block when widths differ)."""

    def __init__(self, in_ch: int, out_ch: int, norm: str):
        super().__init__()
        hidden = min(in_ch, out_ch)
        self.shortcut = nn.Identity() if in_ch == out_ch else ConvBlock(in_ch, out_ch, 1, norm)
        self.conv1 = ConvBlock(in_ch, hidden, 3, norm)
        self.conv2 = ConvBlock(hidden, out_ch, 3, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + self.shortcut(x)


class DomainGuidedEncoder(nn.Module):
    """Deep conv encoder: image [B, C, S, S] -> W+ codes [B, n_styles, style_dim] for every generator layer."""

    def __init__(self, input_size: int = 256, input_nc: int = 3, n_styles: int | None = None, style_dim: int = 512,
                 channel_base: int = 64, channel_max: int = 1024, norm: str = "batch"):
        super().__init__()
        n_down = int(round(math.log2(input_size))) - 2
        if input_size < 8 or 2 ** (n_down + 2) != input_size:
            raise ValueError(f"input_size must be a power of two >= 8, got {input_size}")
        self.input_size = input_size
        self.n_styles = 2 * (n_down + 2) - 2 if n_styles is None else n_styles
        self.style_dim = style_dim
        width = min(channel_base, channel_max)
        self.stem = ConvBlock(input_nc, width, 3, norm)
        blocks = []
        for _ in range(n_down):
            out = min(width * 2, channel_max)
            blocks += [nn.AvgPool2d(2), ResBlock(width, out, norm)]
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width * 16, self.n_styles * style_dim, bias=False)
        self.fc_norm = _norm(norm, self.n_styles * style_dim, dims=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        x = self.blocks(self.stem(x))
        return self.fc_norm(self.fc(x.flatten(1))).view(-1, self.n_styles, self.style_dim)
