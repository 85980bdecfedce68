"""`Refiner`: an `Inversion` of some images in, a better one out — latent optimisation, In-Domain's regularised
optimisation, PTI — chainable after any method (`refine=<name>` in ganinv-eval, -invert and -edit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ganinv.inversion import Inversion


class Refiner:
    """Refines the inversions of `module` (the method whose generator, per-image state and `reconstruct` it works
    through) under `perceptual_net` (an image distance with `per_image`, or None); `DEFAULTS` are the paper's options,
    `options` this refiner's, `label()` what a record calls it; `FILES`: the options that name a file (a network the
    refiner reads), which, like a method's checkpoint, neither name it nor set its experiment apart (`setting`)."""

    NAME = "refiner"
    DEFAULTS: Mapping[str, Any] = {}
    FILES: tuple[str, ...] = ()

    def __init__(self, module: nn.Module, perceptual_net: nn.Module | None = None, show: bool = False, **options):
        if unknown := sorted(set(options) - set(self.DEFAULTS)):
            raise ValueError(f"refine.{unknown[0]} is not an option of {self.NAME}: it has "
                             f"{', '.join(self.DEFAULTS)}")
        self.module, self.perceptual_net, self.show = module, perceptual_net, show
        self.options = {**self.DEFAULTS, **{k: v for k, v in options.items() if v is not None}}

    def refine(self, inversion: Inversion, images: Tensor) -> Inversion:
        raise NotImplementedError

    def __call__(self, inversion: Inversion, images: Tensor) -> Inversion:
        return self.refine(inversion, images)

    def codes(self, inversion: Inversion, images: Tensor) -> Inversion:
        """The codes `refine` would give (and whatever they need), for measures of codes alone (LEC): the whole
        refinement unless a refiner leaves codes where it found them."""
        return self.refine(inversion, images)

    def changed(self, skip: tuple[str, ...] = ()) -> str:
        """The options other than files (and `skip`) that differ from the paper's, as `name value, ...` (empty when
        none do)."""
        return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.setting().items()
                         if v != self.DEFAULTS.get(k) and k not in skip)

    def setting(self) -> dict[str, Any]:
        """The options but the files: what makes two refinements repeats of one experiment."""
        return {k: v for k, v in self.options.items() if k not in self.FILES}

    def label(self) -> str:
        changed = self.changed()
        return self.NAME + (f" ({changed})" if changed else "")

    def to(self, device: torch.device | str) -> Refiner:
        if isinstance(self.perceptual_net, nn.Module):
            self.perceptual_net = self.perceptual_net.to(device)
        return self

    def distance(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """Per-image perceptual distance [B] (zeros without a perceptual net)."""
        if self.perceptual_net is None:
            return y.new_zeros(len(y))
        return self.perceptual_net.per_image(y_hat, y)
