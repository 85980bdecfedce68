"""Losses on latent codes: pSp's w-norm, e4e's delta regularisation, supervised codes of generated samples, and
LSAP's normalised style space (its alignment loss and SND)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def w_norm(codes: torch.Tensor, latent_avg: torch.Tensor | None = None) -> torch.Tensor:
    """pSp's W-norm: L2 norm of (codes - latent_avg) over all layers and dims, batch mean.

    `latent_avg` ([dim] or [n_styles, dim]) is subtracted when the encoder starts from the average code.
    """
    if latent_avg is not None:
        codes = codes - latent_avg.to(codes)
    return codes.flatten(1).norm(2, dim=1).mean()


def delta_regularization(codes: torch.Tensor, stage: int | None = None, p: float = 2) -> torch.Tensor:
    """e4e's L_d-reg: sum over layers i of the batch-mean p-norm of w_i - w_0.

    Like the official training, with a progressive `stage` only the offsets 1 .. stage-1 (already trained) are
    penalised; `stage=None` penalises every layer.
    """
    n = codes.shape[1]
    upto = n if stage is None else min(stage, n)
    total = codes.new_zeros(())
    for i in range(1, upto):
        total = total + torch.linalg.vector_norm(codes[:, i] - codes[:, 0], ord=p, dim=1).mean()
    return total


def code_loss(codes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Supervised MSE to known codes of generated samples; a [B, dim] target is broadcast to every layer."""
    if target.ndim == 2 and codes.ndim == 3:
        target = target.unsqueeze(1).expand_as(codes)
    return F.mse_loss(codes, target)


def style_modulations(generator: nn.Module) -> list[nn.Module]:
    """The affine layers that turn each W+ layer's code into its style vector (one per layer, as LSAP's style space
    takes them): the first convolution's, every styled convolution's, and the last ToRGB's."""
    return [generator.conv1.conv.modulation, *(c.conv.modulation for c in generator.convs),
            generator.to_rgbs[-1].conv.modulation]


class NormalizedStyleSpace(nn.Module):
    """LSAP's normalised style space S^N of a generator: each W+ layer's style vector scaled to unit length. The
    synthetic distribution's direction per layer (`anchor_<i>`) is the mean of the normalised style vectors of
    `n_samples` mapped z (seeded). `alignment_loss` is LSAP's training term, `distance` its SND metric."""

    def __init__(self, generator: nn.Module, n_samples: int = 100_000, seed: int = 0, batch: int = 10_000):
        super().__init__()
        # plain lists: the generator and its layers, not part of this module's state
        self.n_samples, self.modulations, self._source = int(n_samples), style_modulations(generator), [generator]
        self.seed, self.batch, self.ready = int(seed), int(batch), False
        if len(self.modulations) != generator.n_latent:
            raise ValueError(f"the generator has {len(self.modulations)} style layers but {generator.n_latent} W+ "
                             "layers")

    def anchors(self) -> list[torch.Tensor]:
        """Each layer's anchor, computed at first use (on the generator's device then)."""
        if not self.ready:
            generator, g, sums = self._source[0], torch.Generator().manual_seed(self.seed), None
            like = next(generator.parameters())
            with torch.no_grad():
                for i in range(0, self.n_samples, self.batch):
                    z = torch.randn(min(self.batch, self.n_samples - i), generator.style_dim, generator=g).to(like)
                    w = generator.get_latent(z)
                    unit = [F.normalize(m(w), dim=-1).sum(0) for m in self.modulations]
                    sums = unit if sums is None else [a + b for a, b in zip(sums, unit)]
            for i, total in enumerate(sums):
                self.register_buffer(f"anchor_{i}", total / self.n_samples, persistent=False)
            self.ready = True
        return [getattr(self, f"anchor_{i}") for i in range(len(self.modulations))]

    def normalized(self, codes: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's unit style vector [B, C_i] of W+ codes [B, n_latent, dim]."""
        codes = codes.to(self.modulations[0].weight)
        return [F.normalize(m(codes[:, i]), dim=-1) for i, m in enumerate(self.modulations)]

    def alignment_loss(self, codes: torch.Tensor, layers: range | None = None) -> torch.Tensor:
        """LSAP's alignment term (the official `sncd` loss): over `layers` (default all), the sum of the batch mean
        of −⟨s_i / ‖s_i‖, anchor_i⟩ (the anchor is a mean of unit vectors, not renormalised)."""
        units, anchors = self.normalized(codes), self.anchors()
        layers = range(len(units)) if layers is None else layers
        return sum(-(units[i] @ anchors[i].to(units[i])).mean() for i in layers)

    def distance(self, codes: torch.Tensor) -> torch.Tensor:
        """SND per code [B]: the cosine distance 1 − cos(s_i, anchor_i) of each layer's style vector to the synthetic
        direction, averaged over layers (0 where a code points where the generator's samples do on average)."""
        units = self.normalized(codes)
        return torch.stack([1 - u @ F.normalize(a, dim=0).to(u) for u, a in zip(units, self.anchors())], 1).mean(1)
