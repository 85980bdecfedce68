"""Spatially-Adaptive Multilayer selection (Parmar et al. 2022, "Spatially-adaptive multilayer selection for GAN
inversion and editing"), as the authors' `src/sam_inv_optimization.py` runs it after e4e (GAN Inverter runs it after
e4e or LSAP).

1. Segments: the face parser's regions, the face's parts fused into one (the authors' face parser with
   `fuse_face_regions`: skin, brows, eyes, ears, nose, mouth, lips, neck and hair one segment; background,
   glasses, clothes, hat and jewellery each their own).
2. Selection: the invertibility predictor's error map of each latent space (`invertibility.py`) averaged over a
   segment; the segment goes to the earliest space (W+, F4, F6, F8, F10) whose mean is at most `threshold`, else to
   the last one (their `refine`). Each feature space's binary mask is brought to its block's size (PIL Lanczos,
   clipped at 0).
3. Optimisation: from the method's codes, W+ and a residual per feature space (zeros, added to the features leaving
   its block under its mask), by Adam with the rosinality ramp on MSE + perceptual distance to the image (the
   reconstruction clamped to [-1, 1]), the MVG prior on leaky_relu(w, 5) (5000 mapped samples), the delta
   regulariser and each residual's MSE to zero.
4. Result: the W+ codes and, per feature space at r px, `features={r: [1 − m | m · (x_r + f_r)]}` (x_r the
   features the codes give there, f_r the residual): the reconstruction is the optimised image; an edit moves the
   codes and keeps the inverted features under the masks (the authors' `edit_image`, x·(1 − m) + (x_r + m·f_r)·m:
   the same where the mask is 0 or 1).

Where ganinv differs: the parser is the toy one on the toy domain; for real photos BiSeNet with the authors'
`79999_iter.pth` (`refine.parser=bisenet`, `face_parsing.py`), on the image resized to 512 px as its own test
script (GAN Inverter's SAM feeds the image at its size) and the authors' released predictors load by their key
layout (`invertibility.ReleasedPredictor`); the perceptual net is the `loss` group's (theirs: LPIPS VGG at
256 px); the generator's stored noise (theirs: fresh noise each step); on a generator smaller than 256 px the
spaces are those it has (F4 and F6 on the 64-px toy one) and a segment no space fits goes to the last of them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.progress import Progress
from torch import Tensor

from ganinv.configs import yaml_defaults
from ganinv.data.transforms import resize
from ganinv.inversion import Inversion
from ganinv.methods.base import match_size

from .base import Refiner
from .dhr import block_features
from .face_parsing import face_parser
from .invertibility import W_PLUS, InvertibilityPredictor, ReleasedPredictor, space_resolution

# The parts fused into one segment: the toy parser's, and the face parser's classes the authors fuse
# (`fuse_face_regions`: skin, brows, eyes, ears, nose, mouth, lips, neck, hair)
FACE = ("skin", "nose", "eyes", "brows", "mouth", "hair", "l_brow", "r_brow", "l_eye", "r_eye", "l_ear", "r_ear",
        "u_lip", "l_lip", "neck")


class SpatiallyAdaptiveMultilayer(Refiner):
    """SAM after any method: `predictor` (a `ganinv-train-invertibility` file) chooses each segment's space."""

    NAME = "SAM"
    DEFAULTS = yaml_defaults("refine", "sam")
    FILES = ("predictor", "parser_weights")

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        o, g = self.options, self.module.generator
        from ganinv.metrics.suite import is_toy_generator

        if o["parser"] == "toy" and not is_toy_generator(g):
            raise ValueError("refine=sam with refine.parser=toy segments toy faces: this generator is not the toy "
                             "one; for real photos pass refine.parser=bisenet refine.parser_weights=<79999_iter.pth> "
                             "and a predictor for this generator (the authors' invertibility_faces_sg2.pt for FFHQ)")
        if self.perceptual_net is None and o["perceptual"]:
            raise ValueError("SAM's perceptual term needs a perceptual net: choose loss/perceptual=<net>, or set "
                             "refine.perceptual=0")
        self.parser = face_parser(o["parser"], o["parser_weights"])
        self.spaces, self.predictor = spaces_of(o["layers"], g.size), None
        # the parser's labels fused as the authors fuse a face parser's: the face and hair one segment
        labels = self.parser.labels
        face = next(i for i, n in enumerate(labels) if n in FACE)
        self.fused = torch.tensor([face if n in FACE else i for i, n in enumerate(labels)])
        if o["predictor"] is not None:
            self.predictor = self.load_predictor(str(o["predictor"]))
        self._stats = None

    def load_predictor(self, path: str) -> InvertibilityPredictor | ReleasedPredictor:
        from ganinv.metrics.suite import float32_hash

        net, meta = InvertibilityPredictor.load(path)
        if missing := [s for s in self.spaces if s not in net.spaces]:
            raise ValueError(f"refine.predictor={path} predicts {', '.join(net.spaces)}, not {', '.join(missing)}: "
                             f"set refine.layers to spaces it predicts, or retrain it")
        if meta.get("released"):  # the authors' files name no generator: theirs (FFHQ, cars, cats config-f)
            return net.to(self.module.latent_avg.device)
        if (trained := meta.get("generator_hash")) != (own := float32_hash(self.module.generator)):
            raise ValueError(f"refine.predictor={path} learnt the errors of another generator's inversions "
                             f"({str(trained)[:12]}, this one {own[:12]}): retrain it with ganinv-train-invertibility "
                             "on this generator")
        return net.to(self.module.latent_avg.device)

    def to(self, device):
        super().to(device)
        self.parser = self.parser.to(device)
        if self.predictor is not None:
            self.predictor = self.predictor.to(device)
        self._stats = None
        return self

    def stats(self) -> dict[str, Tensor]:
        if self._stats is None:
            self._stats = mvg_stats(self.module.generator)
        return self._stats

    def refine(self, inversion: Inversion, images: Tensor) -> Inversion:
        if self.predictor is None:
            raise ValueError("refine=sam needs refine.predictor=<file>: train one with `ganinv-train-invertibility "
                             "checkpoint=<the method's run> output=<file>`")
        m = self.module
        y = resize(images.to(m.latent_avg), m.generator.size)
        with torch.no_grad():
            errors = self.predictor(y)
            choice = select([errors[s] for s in self.spaces], self.segments(y), float(self.options["threshold"]))
        masks = {space_resolution(s): resized_mask(choice == i, space_resolution(s)).to(y)
                 for i, s in enumerate(self.spaces) if s != W_PLUS and (choice == i).any()}  # the spaces chosen
        return self.fit(inversion, y, masks)

    def segments(self, y: Tensor) -> Tensor:
        """Each pixel's segment [B, H, W]: the toy parser's labels, the face's parts fused."""
        labels = self.parser(y)
        return self.fused.to(labels.device)[labels]

    def fit(self, inversion: Inversion, y: Tensor, masks: dict[int, Tensor]) -> Inversion:
        """W+ and a residual per feature block of `masks` (resolution -> [B, 1, r, r]) optimised together from
        `inversion`'s codes; the result keeps the inverted features under each mask (module docstring, 4)."""
        o, m = self.options, self.module
        w = inversion.codes.to(y).detach().clone().requires_grad_(True)
        residual = {r: y.new_zeros(len(y), m.generator.channels[r], r, r).requires_grad_(True) for r in masks}
        opt = torch.optim.Adam([w, *residual.values()], lr=float(o["lr"]), betas=(0.9, 0.999))
        stats, steps = self.stats(), int(o["steps"])
        with torch.enable_grad(), Progress(transient=True, disable=not self.show) as bar:
            task = bar.add_task("SAM", total=steps)
            for i in range(steps):
                for group in opt.param_groups:
                    group["lr"] = float(o["lr"]) * ramp(i / steps)
                added = inversion.replace(codes=w, features=additive(masks, residual))
                y_hat = match_size(m.reconstruct(added), y).clamp(-1, 1)
                per_image = o["l2"] * F.mse_loss(y_hat, y, reduction="none").flatten(1).mean(1)
                if o["perceptual"]:
                    per_image = per_image + o["perceptual"] * self.distance(y_hat, y)
                per_image = per_image + o["mvg"] * mvg(w, stats).to(y) + o["delta"] * delta(w)
                for f in residual.values():
                    per_image = per_image + o["feature_reg"] * f.pow(2).flatten(1).mean(1)
                opt.zero_grad(set_to_none=True)
                per_image.sum().backward()
                opt.step()
                bar.advance(task)
        w = w.detach()
        added = inversion.replace(codes=w, features=additive(masks, {r: f.detach() for r, f in residual.items()}))
        kept = {r: torch.cat([1 - mask, mask * (block_features(m, added, r) + residual[r].detach())], 1)
                for r, mask in masks.items()}
        return inversion.replace(codes=w, features=kept or None)


def spaces_of(layers, size: int) -> list[str]:
    """The configured spaces a `size`-px generator has (a feature block before its last one), W+ first."""
    spaces = [str(s) for s in layers]
    if W_PLUS not in spaces:
        raise ValueError(f"refine.layers={spaces}: SAM optimises W+ everywhere; list W+ among the spaces")
    return sorted((s for s in spaces if s == W_PLUS or space_resolution(s) < size),
                  key=lambda s: space_resolution(s) or 0)


def select(errors: list[Tensor], segments: Tensor, threshold: float) -> Tensor:
    """Each pixel's space [B, H, W] (an index into `errors`, earliest space first, each [B, 1, H, W]): per segment,
    the earliest space whose mean predicted error there is at most `threshold`, else the last."""
    out = torch.empty_like(segments)
    for b, seg in enumerate(segments):
        ids = torch.unique(seg, return_inverse=True)[1].flatten()
        count = torch.bincount(ids).double()
        means = torch.stack([torch.bincount(ids, weights=e[b, 0].flatten().double()) / count for e in errors], 1)
        fits = means <= threshold
        first = torch.where(fits.any(1), fits.double().argmax(1), torch.full((len(count),), len(errors) - 1))
        out[b] = first[ids].view(seg.shape)
    return out


def resized_mask(mask: Tensor, size: int) -> Tensor:
    """Binary masks [B, H, W] -> [B, 1, size, size]: PIL Lanczos on float images, clipped to [0, the mask's max]."""
    out = []
    for m in mask.float().cpu().numpy():
        small = np.asarray(Image.fromarray(m, mode="F").resize((size, size), Image.LANCZOS))
        out.append(torch.from_numpy(small.clip(0, m.max()).copy()))
    return torch.stack(out)[:, None]


def additive(masks: dict[int, Tensor], residual: dict[int, Tensor]) -> dict[int, Tensor] | None:
    """The generator's `features` that add each residual under its mask."""
    return {r: torch.cat([torch.ones_like(mk), mk * residual[r]], 1) for r, mk in masks.items()} or None


def ramp(t: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """The learning-rate factor at fraction `t` of the steps: up over the first 5 %, cosine down over the last 25 %."""
    down = min(1.0, (1.0 - t) / rampdown)
    return (0.5 - 0.5 * math.cos(down * math.pi)) * min(1.0, t / rampup)


def mvg_stats(generator, samples: int = 5000, seed: int = 0) -> dict[str, Tensor]:
    """The mean and inverse covariance (float64, + 1e-8 I) of leaky_relu(w, 5) over `samples` mapped codes."""
    p = next(generator.parameters())
    z = torch.randn(samples, generator.style_dim, generator=torch.Generator().manual_seed(seed)).to(p)
    with torch.no_grad():
        w = generator.style(z).double()
    v = F.leaky_relu(w, negative_slope=5.0)
    cov = torch.cov(v.T) + 1e-8 * torch.eye(v.shape[1], dtype=v.dtype, device=v.device)
    return {"mean_v": F.leaky_relu(w.mean(0), negative_slope=5.0), "inv_cov_v": torch.linalg.inv(cov)}


def mvg(w: Tensor, stats: dict[str, Tensor]) -> Tensor:
    """Per image [B] (float64): the Mahalanobis distances of every layer's leaky_relu(w, 5), summed over layers."""
    dv = F.leaky_relu(w.double(), negative_slope=5.0) - stats["mean_v"]
    return torch.einsum("bld,de,ble->b", dv, stats["inv_cov_v"], dv)


def delta(w: Tensor) -> Tensor:
    """Per image [B]: the L2 distances of every layer's code to the first layer's, summed."""
    return (w[:, 1:] - w[:, :1]).norm(dim=2).sum(1)
