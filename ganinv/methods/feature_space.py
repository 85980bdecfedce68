"""What the methods that predict generator features share (Feature-Style, StyleRes, SFE): the predicted features'
blend-in over a warm-up, and the random latent edits StyleRes and SFE train on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ganinv.distributed import keyed_generator, seed


def own_features(module, codes: torch.Tensor, resolution: int, point: str = "block") -> torch.Tensor:
    """The generator's features of `codes` at `resolution` (`Generator.features_at`) in the module's precision,
    out of autocast as every generator pass."""
    with torch.autocast(codes.device.type, enabled=False):
        return module.generator.features_at(codes.to(module.latent_avg.dtype), resolution, point)


def blended(feat: torch.Tensor, scale: float) -> torch.Tensor:
    """The `features` hook's [keep | add] that makes the generator's features `(1 - scale) · own + scale · feat`."""
    return torch.cat([torch.full_like(feat[:, :1], 1 - scale), scale * feat], 1)


def blend_scale(iteration: int, warmup: int) -> float:
    """The weight of predicted features against the generator's own at `iteration`: `min(1, iteration / warmup)`
    (official: 1e-4 per iteration, so `warmup` 10 000); 1 without a warm-up."""
    return 1.0 if warmup <= 0 else min(1.0, iteration / warmup)


@dataclass
class DrawnEdit:
    direction: torch.Tensor  # [style_dim]
    alpha: float
    layers: list[int] | None
    name: str


class TrainingEdits:
    """The edits a method trains on: for each iteration's global batch one direction of `directions` (a
    `ganinv-directions` file; none: the InterFaceGAN directions of the toy attributes on this generator) at one of
    `strengths`, drawn from (seed, iteration) alike on every rank (one process draws what N processes draw)."""

    def __init__(self, directions: str | None, strengths: Sequence[float]):
        if not strengths:
            raise ValueError("edit_strengths is empty: give the strengths training edits are drawn from")
        self.path, self.strengths, self._found = directions, [float(s) for s in strengths], None

    def loaded(self, generator):
        if self._found is None:
            from ganinv.editing import load_directions
            from ganinv.metrics.suite import toy_directions

            self._found = toy_directions(generator) if self.path is None else load_directions(self.path, generator)
        return self._found

    def draw(self, generator, iteration: int, purpose: str) -> DrawnEdit:
        found = self.loaded(generator)
        key = keyed_generator(seed(), iteration, purpose)
        k = int(torch.randint(len(found.vectors), (1,), generator=key))
        alpha = self.strengths[int(torch.randint(len(self.strengths), (1,), generator=key))]
        return DrawnEdit(found.vectors[k], alpha, found.layers, found.names[k])
