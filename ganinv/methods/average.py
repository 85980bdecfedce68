"""The average code as an inversion: where latent optimisation starts when no encoder gives it codes."""

from __future__ import annotations

import torch

from .base import InversionModule


class AverageCode(InversionModule):
    """Every image inverted to the generator's average code (W+, one per layer); nothing to train. With a refiner
    (`refine=optim_wplus`, `refine=pti refine.pivot=w`) it is the start of optimisation-based inversion."""

    has_encoder = False
    TERMS = ()

    def label(self) -> str:
        return "Average code"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent_avg.unsqueeze(0).expand(len(x), -1, -1).clone()
