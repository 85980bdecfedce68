"""Latent optimisation (Image2StyleGAN, Abdal et al. 2019): codes in W or W+ fitted to each image by Adam on
pixel MSE + perceptual distance, from the average code — slow, lowest distortion, the least editable codes."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from rich.progress import Progress

from .base import InversionModule, match_size

SPACES = ("w", "w+")


def optimize_codes(module: InversionModule, images: torch.Tensor, init: torch.Tensor, steps: int, lr: float,
                   weights: dict[str, float], space: str = "w+",
                   regulariser: Callable[[torch.Tensor], torch.Tensor] | None = None, show: bool = False
                   ) -> torch.Tensor:
    """Adam on the codes (one per image, or per image and layer in W+) minimising `weights["l2"]` · MSE +
    `weights["perceptual"]` · the module's perceptual net + `regulariser(codes)`, each image on its own (losses
    summed over the batch); returns W+ codes [B, n_latent, dim]."""
    y = images.to(module.latent_avg)
    param = (init[:, 0] if space == "w" else init).detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([param], lr=lr)
    with torch.enable_grad(), Progress(transient=True, disable=not show) as bar:
        task = bar.add_task("optimising codes", total=steps)
        for _ in range(steps):
            codes = param.unsqueeze(1).expand(-1, module.n_latent, -1) if space == "w" else param
            y_hat = match_size(module.reconstruct(codes), y)
            loss = weights.get("l2", 1.0) * F.mse_loss(y_hat, y, reduction="none").flatten(1).mean(1).sum()
            if hasattr(module.nets, "perceptual") and weights.get("perceptual", 0) > 0:
                loss = loss + weights["perceptual"] * _per_image(module.nets.perceptual, y_hat, y)
            if regulariser is not None:
                loss = loss + regulariser(codes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.advance(task)
    codes = param.detach()
    return codes.unsqueeze(1).expand(-1, module.n_latent, -1).clone() if space == "w" else codes


def _per_image(net, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A batch-mean loss net summed over images, so every image's codes get the same gradient scale alone or
    batched."""
    return net(y_hat, y) * len(y)


class OptimizationModule(InversionModule):
    """W / W+ optimisation behind the same `invert` API (batched; images are fitted independently)."""

    has_encoder = False

    def __init__(self, *args, space: str = "w+", steps: int = 500, lr: float = 0.01, **kwargs):
        if space not in SPACES:
            raise ValueError(f"space={space!r} is not one of {', '.join(SPACES)}")
        self.space, self.steps, self.lr = space, int(steps), float(lr)
        super().__init__(*args, **kwargs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        init = self.latent_avg.unsqueeze(0).expand(len(x), -1, -1)
        return optimize_codes(self, x, init, self.steps, self.lr, self.weights, self.space)

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """Codes fitted to the images at the generator's resolution (no encoder input size here)."""
        from ganinv.data.transforms import resize

        return self.encode(resize(images.to(self.latent_avg), self.generator.size))
