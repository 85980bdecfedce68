"""HFGI (Wang et al. 2022), high-fidelity GAN inversion: keep a frozen base encoder's code (e4e) and carry what it
misses — the distortion map, input minus reconstruction — into the generator: the consultation encoder turns it
into a scale and a shift of the generator's features at one resolution (consultation fusion), after the adaptive
distortion alignment module (ADA) has aligned it to the image being generated, which after an edit is not the
one the map came from. ADA learns that alignment self-supervised: the map is randomly warped (a perspective
transform) and must come back to where it was."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.distributed import batch_rows, keyed_generator, rank_and_world, seed
from ganinv.encoders.hfgi import HFGINets
from ganinv.inversion import Inversion

from .base import InversionModule
from .on_base import OnBaseModule


class HFGIModule(OnBaseModule):
    """Trains `residue` (consultation encoder) and `grid_align` (ADA) on top of `base`; loss terms l2, perceptual,
    id and `res` (L1 of ADA's error on the warped map, official res_lambda); `distortion_scale` and `aug_rate`:
    the warp's strength and probability (official 0.15 and 0.9 for FFHQ); the features are conditioned at
    `input_size / 4` (official: 64 px of a 1024-px generator, from 256-px inputs)."""

    TERMS = (*InversionModule.TERMS, "res")

    def __init__(self, *args, distortion_scale: float = 0.15, aug_rate: float = 0.9, **kwargs):
        self.distortion_scale, self.aug_rate = float(distortion_scale), float(aug_rate)
        super().__init__(*args, **kwargs)
        self.resolution = self.input_size // 4
        if self.resolution not in self.generator.channels or self.resolution < 8:
            raise ValueError(f"HFGI conditions the generator's {self.resolution}-px features (input_size / 4), which "
                             f"this {self.generator.size}-px generator does not have: choose input_size 32 .. "
                             f"{self.generator.size * 4}")

    def label(self) -> str:
        return f"HFGI (on {self.hparams['base_method']['label']})"

    def build_encoder(self, cfg: dict) -> nn.Module:
        return HFGINets(self.generator.channels[self.input_size // 4], **cfg)

    def seen(self, image: torch.Tensor) -> torch.Tensor:
        """A generator image as the distortion map's counterpart: clamped, bilinear to the input size."""
        return F.interpolate(image.clamp(-1, 1), size=self.input_size, mode="bilinear")

    def conditioned(self, inv: Inversion, residual: torch.Tensor) -> torch.Tensor:
        """The generator's image of `inv` with its features conditioned on `residual` (already aligned); the
        generator in float32 even under `speed.autocast`, as `reconstruct` keeps it."""
        dtype = self.latent_avg.dtype  # the module's (float64 in parity runs), out of autocast's bf16
        scale, shift = (c.to(dtype) for c in self.encoder.residue(residual))
        with torch.autocast(scale.device.type, enabled=False):
            return self.generator([inv.codes.to(dtype)], input_is_latent=True, noise=inv.noise, randomize_noise=False,
                                  offsets=inv.offsets, conditions={self.resolution: (scale, shift)},
                                  features=inv.features)[0]

    def generate(self, inv: Inversion) -> torch.Tensor:
        """The image of the codes, then again with the distortion map aligned to that image (ADA) fused in: an
        edit moves the codes, and the map follows the edited image."""
        image = super().generate(inv.replace(residual=None))
        if inv.residual is None:
            return image
        aligned = self.encoder.grid_align(torch.cat([inv.residual, self.seen(image)], 1))
        return self.conditioned(inv, aligned)

    def inversion(self, x: torch.Tensor) -> Inversion:
        start, _ = self.base_inversion(x)
        with torch.no_grad():
            image = super().generate(start)  # the base's inversion: no residual yet
        return start.replace(residual=x - self.seen(image))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_inversion(x)[0].codes

    def warp(self, residual: torch.Tensor) -> torch.Tensor:
        """A random perspective warp of each map with probability `aug_rate` (kornia's RandomPerspective: drawn per
        image, where the official torchvision transform draws one per batch). The draws are this process's rows of
        one draw for the global batch, keyed by seed and iteration: N processes warp what one process warps."""
        from kornia.augmentation import RandomPerspective

        aug = RandomPerspective(self.distortion_scale, p=self.aug_rate)
        world = rank_and_world()[1]
        n, shape = len(residual), residual.shape[1:]
        with torch.random.fork_rng(devices=[]):
            key = keyed_generator(seed(), self.iterations_done(), "warp")
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=key)))
            drawn = aug.forward_parameters(torch.Size([n * world, *shape]))
        mine = {k: batch_rows(v) for k, v in drawn.items() if k != "forward_input_shape"}
        mine["forward_input_shape"] = torch.tensor([n, *shape])
        return aug(residual, params={k: v.to(residual.device) for k, v in mine.items()})

    def train_step(self, batch: dict) -> torch.Tensor:
        x, y = batch["x"], batch["y"]
        start, _ = self.base_inversion(x)
        with torch.no_grad():
            seen = self.seen(super().generate(start))
        truth = (x - seen).detach()
        aligned = self.encoder.grid_align(torch.cat([self.warp(truth), seen], 1))
        image = self.conditioned(start, aligned)
        terms = {**self.image_losses(image, y), "res": F.l1_loss(aligned, truth)}
        return self.total(terms)
