"""e4e's latent discriminator: an MLP telling mapped w = f(z) from encoded w."""

from __future__ import annotations

import torch
from torch import nn


class LatentCodesDiscriminator(nn.Module):
    """`n_mlp - 1` x (Linear + LeakyReLU(0.2)) then Linear -> 1 logit; keys `mlp.{0,2,4,6}` for n_mlp=4."""

    def __init__(self, style_dim: int = 512, n_mlp: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_mlp - 1):
            layers += [nn.Linear(style_dim, style_dim), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(style_dim, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.mlp(w)
