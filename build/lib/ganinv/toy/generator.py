"""The committed toy StyleGAN2 and the scores that say whether its samples look like the renders."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .attributes import NAMES, normalise
from .nets import ASSETS, WIDTHS, load_attribute_net, load_perceptual_net
from .render import render

GENERATOR_FILE = "generator.pt"


def load_generator(path: str | Path | None = None):
    """The toy StyleGAN2 (`Generator` with `latent_avg`), trained by `ganinv-train-generator data=toy`."""
    from ganinv.checkpoints import CheckpointError
    from ganinv.checkpoints import load_generator as load

    if path is not None:
        return load(path)  # a missing file is "no such file", like any other checkpoint path
    if not (ASSETS / GENERATOR_FILE).exists():
        raise CheckpointError(ASSETS / GENERATOR_FILE, "no such file: the committed toy generator is missing from "
                              "this installation.", "Reinstall ganinv, or retrain it with `make toy-assets` "
                              "(`python -m ganinv.toy.make_assets`).")
    return load(ASSETS / GENERATOR_FILE)


@torch.no_grad()
def sample(g, n: int, seed: int = 0, batch: int = 64, truncation: float = 1.0) -> Tensor:
    """`n` samples [n, 3, R, R] in [-1, 1] from fixed z (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, g.style_dim, generator=gen)
    out = []
    for i in range(0, n, batch):
        img, _ = g([z[i : i + batch]], truncation=truncation, truncation_latent=g.latent_avg,
                   randomize_noise=False)
        out.append(img.clamp(-1, 1))
    return torch.cat(out)


class PerceptualFeatures(nn.Module):
    """Pooled perceptual-net features (the last two stages): the toy stand-in for Inception features in FID.

    Takes images in [0, 1] (torchmetrics' `normalize=True` convention)."""

    def __init__(self, net=None):
        super().__init__()
        self.net = net or load_perceptual_net()
        self.num_features = WIDTHS[-2] + WIDTHS[-1]

    def forward(self, x: Tensor) -> Tensor:
        feats = self.net.backbone(x * 2 - 1)
        return torch.cat([feats[-2].mean((2, 3)), feats[-1].mean((2, 3))], 1)


@torch.no_grad()
def toy_fid(real: Tensor, *fakes: Tensor, features: PerceptualFeatures | None = None, batch: int = 250) -> list[float]:
    """FID of each image set in `fakes` against `real` (all in [-1, 1]), on perceptual-net features
    (torchmetrics' Fréchet distance); the real features are computed once."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=features or PerceptualFeatures(), normalize=True,
                                   reset_real_features=False)

    def update(images: Tensor, real: bool) -> None:
        for i in range(0, len(images), batch):
            fid.update(images[i : i + batch] * 0.5 + 0.5, real=real)

    update(real, True)
    scores = []
    for fake in fakes:
        fid.reset()  # keeps the real statistics
        update(fake, False)
        scores.append(float(fid.compute()))
    return scores


@torch.no_grad()
def generator_scores(g, n: int = 2000, seed: int = 0, render_seed: int = 950_000, assets: Path = ASSETS) -> dict:
    """Toy FID (perceptual-net features) of samples vs held-out renders, with the renders-vs-renders floor,
    and the mean 1-D Wasserstein distance between predicted attribute distributions of samples and renders.
    The toy nets are read from `assets`."""
    res = g.size
    fake = sample(g, n, seed)
    real = render(n, res, seed=render_seed, frontal=False).images
    other = render(n, res, seed=render_seed + 1, frontal=False).images
    feats = PerceptualFeatures(load_perceptual_net(assets / "perceptual_net.pt"))
    anet = load_attribute_net(assets / "attribute_net.pt")
    a_fake, a_real = (normalise(torch.cat([anet(x[i : i + 250]) for i in range(0, n, 250)])) for x in (fake, real))
    w1 = (a_fake.sort(0).values - a_real.sort(0).values).abs().mean(0)
    fid, floor = toy_fid(real, fake, other, features=feats)
    return {"fid_perceptual": round(fid, 4), "fid_perceptual_render_floor": round(floor, 4),
            "attribute_w1_mean": round(float(w1.mean()), 4),
            "attribute_w1": {name: round(float(w1[i]), 4) for i, name in enumerate(NAMES)}, "n": n}
