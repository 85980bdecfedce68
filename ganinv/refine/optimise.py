"""Latent optimisation (Image2StyleGAN, Abdal et al. 2019): codes in W or W+ fitted to each image by Adam on
pixel MSE + perceptual distance — from a method's codes, or from the average code without one: slow, lowest
distortion, the least editable codes. Optionally the noise maps too (per image, with rosinality's projector noise
regularisation and renormalisation)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import Tensor

from ganinv.configs import yaml_defaults
from ganinv.data.transforms import resize
from ganinv.inversion import Inversion
from ganinv.methods.base import match_size

from .base import Refiner

SPACES = ("w", "w+")
NOISE = ("fixed", "optimize")
NOISE_REGULARIZE = 1e5  # rosinality's projector default


def optimize_codes(module, images: Tensor, init: Inversion, steps: int, lr: float, weights: dict[str, float],
                   distance: Callable[[Tensor, Tensor], Tensor], space: str = "w+",
                   regulariser: Callable[[Tensor, Tensor], Tensor] | None = None, show: bool = False,
                   noise: bool = False) -> Inversion:
    """Adam on the codes of `init` (one per image, or per image and layer in W+) — and with `noise`, per-image
    noise maps — minimising `weights["l2"]` · MSE + `weights["perceptual"]` · `distance` (per image)
    + `regulariser(codes, image)` (the step's rendered image, generator size: one generator pass per step), each
    image on its own (losses summed over the batch), rendered through `module` with the rest of `init`'s state;
    returns `init` with W+ codes [B, n_latent, dim] (and the fitted noise maps)."""
    y = images.to(module.latent_avg)
    start = init.codes.to(y)
    param = (start[:, 0] if space == "w" else start).detach().clone().requires_grad_(True)
    maps = [torch.randn(len(y), *n.shape[1:], device=y.device).requires_grad_(True)
            for n in module.generator.make_noise()] if noise else None
    opt = torch.optim.Adam([param, *(maps or [])], lr=lr)
    with torch.enable_grad(), Progress(transient=True, disable=not show) as bar:
        task = bar.add_task("optimising codes", total=steps)
        for _ in range(steps):
            codes = param.unsqueeze(1).expand(-1, module.n_latent, -1) if space == "w" else param
            image = module.reconstruct(init.replace(codes=codes, noise=maps if maps is not None else init.noise))
            y_hat = match_size(image, y)
            loss = weights["l2"] * F.mse_loss(y_hat, y, reduction="none").flatten(1).mean(1).sum()
            if weights.get("perceptual", 0) > 0:
                loss = loss + weights["perceptual"] * distance(y_hat, y).sum()
            if regulariser is not None:
                loss = loss + regulariser(codes, image)
            if maps is not None:
                loss = loss + NOISE_REGULARIZE * noise_regularization(maps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if maps is not None:
                with torch.no_grad():  # keep every map zero-mean, unit-variance noise
                    for m in maps:
                        m.sub_(m.mean((1, 2, 3), keepdim=True)).div_(m.std((1, 2, 3), keepdim=True))
            bar.advance(task)
    codes = param.detach()
    codes = codes.unsqueeze(1).expand(-1, module.n_latent, -1).clone() if space == "w" else codes
    return init.replace(codes=codes, noise=[m.detach() for m in maps] if maps is not None else init.noise)


def noise_regularization(maps: list[Tensor]) -> Tensor:
    """Squared autocorrelation of each noise map with its one-pixel shifts, summed over a pyramid down to 8x8 and
    over images (each image's maps on their own): keeps optimised noise from absorbing image structure
    (rosinality's projector)."""
    loss = maps[0].new_zeros(())
    for n in maps:
        while True:
            for shifted in (n.roll(1, 3), n.roll(1, 2)):
                loss = loss + (n * shifted).mean((1, 2, 3)).pow(2).sum()
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return loss


class CodeOptimiser(Refiner):
    """W / W+ optimisation (`space`), `steps` Adam steps at `lr` on `l2` · MSE + `perceptual` · the perceptual
    distance; `noise: fixed | optimize` (the generator's stored noise, or noise maps fitted per image). Images are
    fitted independently, in batches."""

    DEFAULTS = yaml_defaults("refine", "optim_wplus")

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        o = self.options
        if o["space"] not in SPACES or o["noise"] not in NOISE:
            raise ValueError(f"refine.space={o['space']!r}, refine.noise={o['noise']!r}: choose space in {SPACES} "
                             f"and noise in {NOISE}")
        if o["perceptual"] > 0 and self.perceptual_net is None:
            raise ValueError(f"refine.perceptual is {o['perceptual']} but no perceptual net was given: choose "
                             "loss/perceptual=<net>, or set refine.perceptual=0")

    def label(self) -> str:
        o = self.options
        noise = ", noise fitted" if o["noise"] == "optimize" else ""
        return f"Optimisation ({o['space'].upper()}, {o['steps']} steps, lr {o['lr']:g}{noise})"

    def refine(self, inversion: Inversion, images: Tensor) -> Inversion:
        o = self.options
        y = resize(images.to(self.module.latent_avg), self.module.generator.size)
        return optimize_codes(self.module, y, inversion, int(o["steps"]), float(o["lr"]),
                              {"l2": o["l2"], "perceptual": o["perceptual"]}, self.distance, o["space"],
                              show=self.show, noise=o["noise"] == "optimize")
