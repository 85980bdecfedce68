"""Non-saturating logistic GAN losses and the R1 penalty with lazy regularisation (StyleGAN2 / e4e / In-Domain)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import autograd


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Discriminator: softplus(-D(real)) + softplus(D(fake)), batch means."""
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Generator / encoder side: softplus(-D(fake)), batch mean."""
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred: torch.Tensor, real_input: torch.Tensor) -> torch.Tensor:
    """R1: batch mean of the squared gradient norm of D at real samples (graph kept for backprop)."""
    (grad,) = autograd.grad(real_pred.sum(), real_input, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


@dataclass
class LazyR1:
    """R1 applied every `every` steps with weight gamma/2 * every (StyleGAN2's lazy regularisation).

    e4e's latent discriminator uses gamma 10 every 16 steps; In-Domain's image discriminator gamma 10 every step.
    """

    gamma: float = 10.0
    every: int = 16

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def __call__(self, discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
        real = real.detach().requires_grad_(True)
        pred = discriminator(real)
        # `0 * pred[0]` keeps every D output in the graph, so DDP sees all parameters used.
        return self.gamma / 2 * r1_penalty(pred, real) * self.every + 0 * pred[0].sum()
