"""Latent optimisation (Image2StyleGAN, Abdal et al. 2019): codes in W or W+ fitted to each image by Adam on
pixel MSE + perceptual distance, from the average code — slow, lowest distortion, the least editable codes.
Optionally the noise maps too (per image, with rosinality's projector noise regularisation and renormalisation)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from rich.progress import Progress

from .base import ConfigError, InversionModule, match_size

SPACES = ("w", "w+")
NOISE = ("fixed", "optimize")


NOISE_REGULARIZE = 1e5  # rosinality's projector default


def optimize_codes(module: InversionModule, images: torch.Tensor, init: torch.Tensor, steps: int, lr: float,
                   weights: dict[str, float], space: str = "w+",
                   regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, show: bool = False,
                   noise: bool = False) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """Adam on the codes (one per image, or per image and layer in W+) — and with `noise`, per-image noise maps —
    minimising `weights["l2"]` · MSE + `weights["perceptual"]` · the module's perceptual net
    + `regulariser(codes, image)` (the step's rendered image, generator size: one generator pass per step),
    each image on its own (losses summed over the batch); returns W+ codes [B, n_latent, dim] and the noise maps
    (or None)."""
    y = images.to(module.latent_avg)
    param = (init[:, 0] if space == "w" else init).detach().clone().requires_grad_(True)
    maps = [torch.randn(len(y), *n.shape[1:], device=y.device).requires_grad_(True)
            for n in module.generator.make_noise()] if noise else None
    opt = torch.optim.Adam([param, *(maps or [])], lr=lr)
    with torch.enable_grad(), Progress(transient=True, disable=not show) as bar:
        task = bar.add_task("optimising codes", total=steps)
        for _ in range(steps):
            codes = param.unsqueeze(1).expand(-1, module.n_latent, -1) if space == "w" else param
            image = module.reconstruct(codes, maps)
            y_hat = match_size(image, y)
            loss = weights["l2"] * F.mse_loss(y_hat, y, reduction="none").flatten(1).mean(1).sum()
            if hasattr(module.nets, "perceptual") and weights.get("perceptual", 0) > 0:
                loss = loss + weights["perceptual"] * _per_image(module.nets.perceptual, y_hat, y)
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
    return codes, None if maps is None else [m.detach() for m in maps]


def noise_regularization(maps: list[torch.Tensor]) -> torch.Tensor:
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


def _per_image(net, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A batch-mean loss net summed over images, so every image's codes get the same gradient scale alone or
    batched."""
    return net(y_hat, y) * len(y)


class OptimizationModule(InversionModule):
    """W / W+ optimisation behind the same `invert` API (batched; images are fitted independently).
    `noise: fixed | optimize`: the generator's stored noise, or noise maps fitted per image (`fit` returns them;
    `reconstruct(codes, noise)` uses them)."""

    has_encoder = False
    TERMS = ("l2", "perceptual")

    def __init__(self, *args, space: str = "w+", steps: int = 500, lr: float = 0.01, noise: str = "fixed",
                 **kwargs):
        if space not in SPACES or noise not in NOISE:
            raise ValueError(f"space={space!r}, noise={noise!r}: choose space in {SPACES} and noise in {NOISE}")
        self.space, self.steps, self.lr, self.noise = space, int(steps), float(lr), noise
        super().__init__(*args, **kwargs)
        if not self.weights:
            raise ConfigError("latent optimisation needs its losses: pass loss (conf/loss/optim_wplus.yaml)")

    def label(self) -> str:
        noise = ", noise fitted" if self.noise == "optimize" else ""
        return f"Optimisation ({self.space.upper()}, {self.steps} steps, lr {self.lr:g}{noise})"

    def fit(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Codes (and, with `noise=optimize`, noise maps) fitted to images of any size, at the generator's."""
        from ganinv.data.transforms import resize

        y = resize(images.to(self.latent_avg), self.generator.size)
        init = self.latent_avg.unsqueeze(0).expand(len(y), -1, -1)
        return optimize_codes(self, y, init, self.steps, self.lr, self.weights, self.space,
                              noise=self.noise == "optimize")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.fit(x)[0]

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """Codes fitted to the images (with `noise=optimize`, `fit` also returns the maps they need)."""
        return self.fit(images)[0]
