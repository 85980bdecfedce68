"""LSAP (Cao et al. 2022): e4e trained with an alignment term that pulls each layer's normalised style vector
towards the generator's synthetic direction (`ganinv.losses.NormalizedStyleSpace`); the official recipe
(GANInverter configs/lsap) drops the latent discriminator and weighs the alignment 0.5."""

from __future__ import annotations

from .e4e import E4EModule


class LSAPModule(E4EModule):
    """e4e whose loss must weigh LSAP's `sncd` term (over the active layers, as every encoder may:
    `InversionModule.alignment_terms`); `anchor_samples` mapped z give the synthetic direction (official: 1e5)."""

    TERMS = (*E4EModule.TERMS, "sncd")

    def label(self) -> str:
        return "LSAP"
