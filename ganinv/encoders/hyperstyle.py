"""HyperStyle's hypernetwork (Alaluf et al. 2022) with the official key names (`SharedWeightsHyperNetResNet`):
a ResNet34 on [image, current reconstruction] and, for each generator layer it tunes, a refinement block that
predicts a relative offset δ of that layer's convolution weight (the generator uses W · (1 + δ)).

Layers are numbered as the generator applies them: conv1, to_rgb1, then per resolution the upsampling conv, the
conv and the ToRGB. Refinement blocks of 3x3 layers whose input and output widths are the generator's widest
(`shared`) share one `SharedWeightsHypernet`, fed by a per-layer `HyperRefinementBlock`; the others predict one
offset per (output, input) channel pair (`RefinementBlock`), the same for every kernel position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ganinv.stylegan2.layers import EqualLinear

from .ir_se import WIDTHS, check_input_size
from .restyle import RESNET34_BLOCKS, _resnet_units


def _down(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU()]


class SharedWeightsHypernet(nn.Module):
    """A code [B, z_dim] -> a kernel [B, out, in, f, f] through two linear maps (HyperStyle's shared head)."""

    def __init__(self, f_size: int = 3, z_dim: int = 512, out_size: int = 512, in_size: int = 512):
        super().__init__()
        self.f_size, self.z_dim, self.out_size, self.in_size = f_size, z_dim, out_size, in_size
        self.w1 = nn.Parameter(torch.fmod(torch.randn(z_dim, out_size * f_size * f_size) / 40, 2))
        self.b1 = nn.Parameter(torch.fmod(torch.randn(out_size * f_size * f_size) / 40, 2))
        self.w2 = nn.Parameter(torch.fmod(torch.randn(z_dim, in_size * z_dim) / 40, 2))
        self.b2 = nn.Parameter(torch.fmod(torch.randn(in_size * z_dim) / 40, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = (z @ self.w2 + self.b2).view(len(z), self.in_size, self.z_dim)
        return (h @ self.w1 + self.b1).view(len(z), self.out_size, self.in_size, self.f_size, self.f_size)


class HyperRefinementBlock(nn.Module):
    """Features [B, C, s, s] -> a code (convolutions down to 1x1, an equalised linear) -> the shared hypernet."""

    def __init__(self, hypernet: SharedWeightsHypernet, n_channels: int = 512, inner_c: int = 128,
                 spatial: int = 16, z_dim: int = 512):
        super().__init__()
        modules = [nn.Conv2d(n_channels, inner_c, 3, stride=1, padding=1), nn.LeakyReLU()]
        for _ in range(int(math.log2(spatial)) - 1):
            modules += _down(inner_c, inner_c)
        self.convs = nn.Sequential(*modules, *_down(inner_c, z_dim))
        self.linear = EqualLinear(z_dim, z_dim, lr_mul=1)
        self.hypernet = hypernet
        self.z_dim = z_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.hypernet(self.linear(self.convs(features).view(-1, self.z_dim)))


class RefinementBlock(nn.Module):
    """Features -> one offset per (output, input) channel pair: [B, out, in, k, k] (the same at every kernel
    position; ToRGB layers: 1x1 kernels, no pooling)."""

    def __init__(self, kernel: int, in_channels: int, out_channels: int, to_rgb: bool, n_channels: int = 512,
                 inner_c: int = 256, spatial: int = 16, out_c: int = 512):
        super().__init__()
        self.kernel, self.in_channels, self.out_channels, self.to_rgb = kernel, in_channels, out_channels, to_rgb
        pools = int(math.log2(spatial)) - 1 - (kernel == 3)
        modules = _down(n_channels, inner_c)
        for _ in range(pools - 1):
            modules += _down(inner_c, inner_c)
        self.convs = nn.Sequential(*modules, *_down(inner_c, out_c))
        head = nn.Conv2d(out_c, in_channels * out_channels, 1)
        self.output = nn.Sequential(head) if to_rgb else nn.Sequential(nn.AdaptiveAvgPool2d(1), head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.output(self.convs(x))
        if self.to_rgb:
            return x.view(-1, self.out_channels, self.in_channels, self.kernel, self.kernel)
        x = x.view(-1, self.out_channels, self.in_channels, 1, 1)
        return x.expand(-1, -1, -1, self.kernel, self.kernel)


class SharedWeightsHyperNetResNet(nn.Module):
    """`forward(cat([x, ŷ], 1))` -> one relative offset per generator layer (None for layers not tuned).

    `layers`: (kernel, in, out, to_rgb) of every modulated convolution in the generator's order; `tune`: the
    indices tuned (official: every non-ToRGB layer); `shared`: the indices that use the shared hypernet (default:
    3x3 layers of the widest width, which are the official 0, 2, 3, 5, 6, 8, 9, 11, 12 at 1024 px)."""

    def __init__(self, layers: Sequence[tuple[int, int, int, bool]], tune: Sequence[int] | None = None,
                 input_nc: int = 6, widths: Sequence[int] = WIDTHS, input_size: int = 256,
                 shared: Sequence[int] | None = None, hyper_dim: int = 512, blocks: Sequence[int] = RESNET34_BLOCKS):
        super().__init__()
        self.input_size = input_size
        self.conv1 = nn.Conv2d(input_nc, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.PReLU(widths[0])
        self.body = nn.Sequential(*_resnet_units(widths, blocks))
        widest = max(max(i, o) for _, i, o, _ in layers)
        self.layers_to_tune = list(range(len(layers)) if tune is None else tune)
        self.shared_layers = list(shared) if shared is not None else [
            j for j, (k, i, o, rgb) in enumerate(layers) if k == 3 and i == o == widest and not rgb]
        self.shared_weight_hypernet = SharedWeightsHypernet(3, hyper_dim, widest, widest)
        spatial, feats = input_size // 16, widths[-1]
        self.refinement_blocks = nn.ModuleList(
            None if j not in self.layers_to_tune else
            HyperRefinementBlock(self.shared_weight_hypernet, feats, 128, spatial, hyper_dim)
            if j in self.shared_layers else RefinementBlock(k, i, o, rgb, feats, 256, spatial, hyper_dim)
            for j, (k, i, o, rgb) in enumerate(layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        check_input_size(self, x)
        x = self.body(self.relu(self.bn1(self.conv1(x))))
        return [None if block is None else block(x) for block in self.refinement_blocks]
