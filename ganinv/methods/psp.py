"""pSp (Richardson et al. 2021, "Encoding in Style"): a feature-pyramid encoder whose map2style heads write W+
directly; L2 + LPIPS + identity + W-norm; the same network for the image-to-image tasks (input channels follow
the task) and multi-modal synthesis by style mixing."""

from __future__ import annotations

import torch

from ganinv.encoders import BackboneEncoderUsingLastLayerIntoW, GradualStyleEncoder
from ganinv.losses import w_norm

from .base import InversionModule

SPACES = ("w+", "w")


class PSPModule(InversionModule):
    """`space: w+` (GradualStyleEncoder, one code per layer) or `w` (pSp's `learn_in_w`: one code for all)."""

    TERMS = (*InversionModule.TERMS, "w_norm")

    def __init__(self, *args, space: str = "w+", **kwargs):
        if space not in SPACES:
            raise ValueError(f"space={space!r} is not one of {', '.join(SPACES)}")
        self.space = space
        super().__init__(*args, **kwargs)

    def label(self) -> str:
        return f"pSp ({self.space.upper()})"

    def build_encoder(self, cfg: dict) -> torch.nn.Module:
        common = {"input_nc": self.input_nc, "style_dim": self.style_dim, "input_size": self.input_size, **cfg}
        if self.space == "w":
            return BackboneEncoderUsingLastLayerIntoW(**common)
        return GradualStyleEncoder(n_styles=self.n_latent, **common)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        codes = self.encoder(x)
        if codes.ndim == 2:  # W: the one code on every layer
            codes = codes.unsqueeze(1).expand(-1, self.n_latent, -1)
        return self.offset(codes)

    def train_step(self, batch: dict) -> torch.Tensor:
        codes = self.encode(batch["x"])
        terms = {**self.image_losses(self.reconstruct(codes), batch["y"]), **self.alignment_terms(codes)}
        if self.weights["w_norm"] > 0:
            terms["w_norm"] = w_norm(codes, self.latent_avg if self.start_from == "avg" else None)
        return self.total(terms)

    @staticmethod
    def mix(codes: torch.Tensor, other: torch.Tensor, inject_index: int, alpha: float = 1.0) -> torch.Tensor:
        """pSp's multi-modal synthesis: layers from `inject_index` on take `alpha * other + (1 - alpha) * codes`
        (`other`: e.g. the codes of random z through the mapping network)."""
        out = codes.clone()
        out[:, inject_index:] = alpha * other[:, inject_index:] + (1 - alpha) * codes[:, inject_index:]
        return out
