"""LSAP (Cao et al. 2022): e4e trained with an alignment term that pulls each layer's normalised style vector
towards the generator's synthetic direction (`ganinv.losses.NormalizedStyleSpace`); the official recipe
(GANInverter configs/lsap) drops the latent discriminator and weighs the alignment 0.5."""

from __future__ import annotations

import torch

from ganinv.losses import NormalizedStyleSpace

from .e4e import E4EModule


class LSAPModule(E4EModule):
    """e4e plus LSAP's `sncd` term over the active layers; `anchor_samples` mapped z give the synthetic
    direction (official: 1e5)."""

    TERMS = (*E4EModule.TERMS, "sncd")

    def __init__(self, *args, anchor_samples: int = 100_000, **kwargs):
        super().__init__(*args, **kwargs)
        self.style_space = NormalizedStyleSpace(self.generator, int(anchor_samples))

    def label(self) -> str:
        return "LSAP"

    def e4e_terms(self, codes: torch.Tensor, stage: int) -> dict[str, torch.Tensor]:
        terms = super().e4e_terms(codes, stage)
        if self.weights.get("sncd", 0) > 0:
            terms["sncd"] = self.style_space.alignment_loss(codes, range(stage + 1))
        return terms
