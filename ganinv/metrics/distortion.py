"""Distortion metrics as torchmetrics `Metric`s (sums and counts synced across DDP ranks).

ganinv's protocol (`metrics=toy`, `faces`, `faces_papers`): both images clamped to [-1, 1] and resized to `size`
(256 px for real domains; `size=None` keeps the toy domain's own 64 px), each metric computed per image, then
averaged over images. PSNR is 10·log10(1 / MSE) on [0, 1] pixels (peak 1, RGB, every pixel and channel), per
image, then averaged; `DistortionMetrics` also reports `psnr_dataset`, the PSNR of the data set's mean MSE (what
scripts that average the MSE first print; never above the per-image mean). On [-1, 1] pixels with peak 1 it would
read 6.02 dB lower. The published tables' protocols (`metrics=ganinverter`, `psp`, `sfe`) are in `published`.
See docs/evaluation.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric

from ganinv.data.transforms import PROTOCOL_SIZE

from .reading import Reading

MS_SSIM_MIN_SIZE = 161  # five scales of an 11-px Gaussian window: the coarsest side must stay above 10 px


NO_FACE = "no_face_pairs"  # the count of pairs an identity protocol that finds faces could not rate


class PerImageMean(Metric):
    """Mean over images of `score(preds, target) -> [B]`, the pair read by `reading` (a `Reading`, or a size:
    ganinv's reading at that size)."""

    full_state_update = False

    def __init__(self, score: Callable[[Tensor, Tensor], Tensor] | None = None,
                 reading: Reading | int | None = PROTOCOL_SIZE, larger_is_better: bool = False,
                 may_skip: bool = False, **kwargs):
        super().__init__(**kwargs)
        if score is not None:
            self.score = score
        self.reading = reading if isinstance(reading, Reading) else Reading(reading)
        self.larger_is_better, self.may_skip = larger_is_better, may_skip
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("skipped", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape[0] != target.shape[0]:
            raise ValueError(f"{type(self).__name__}: {preds.shape[0]} reconstructions for {target.shape[0]} targets")
        with torch.no_grad():
            s = self.score(*self.reading(preds, target))
        if self.may_skip:  # a pair the score cannot rate (NaN) is left out and counted
            self.skipped += s.isnan().sum()
            s = s[~s.isnan()]
        self.total += s.double().sum()
        self.count += s.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count.clamp_min(1)).float()


def mse(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image mean squared error on [-1, 1] pixels (the papers' L2)."""
    return (preds - target).pow(2).flatten(1).mean(1)


def psnr(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR in dB on [0, 1] pixels, peak 1 (inputs in [-1, 1])."""
    return 10 * torch.log10(1 / (mse(preds, target) / 4).clamp_min(1e-10))


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


def _gaussian_window(channels: int, like: Tensor, size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).to(like)
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size)


def _ssim_maps(x: Tensor, y: Tensor, k1: float = 0.01, k2: float = 0.03) -> tuple[Tensor, Tensor]:
    """The SSIM and contrast-structure maps of [0, 1] images over the valid region (no padding): the window only
    where it fits inside the image, as Wang et al.'s code and scikit-image average it."""
    c1, c2 = k1**2, k2**2
    w = _gaussian_window(x.shape[1], x)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, w, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    return (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs, cs


def ssim(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image SSIM of [-1, 1] images, computed on [0, 1]: 11-px Gaussian window, sigma 1.5, K = (0.01, 0.03),
    the map averaged over its valid region and the channels (Wang et al. 2004; scikit-image's
    `structural_similarity(gaussian_weights=True, use_sample_covariance=False)`)."""
    return _ssim_maps((preds.double() + 1) / 2, (target.double() + 1) / 2)[0].flatten(1).mean(1).float()


def ms_ssim(preds: Tensor, target: Tensor) -> Tensor:
    """Per-image MS-SSIM of [-1, 1] images on [0, 1]: five scales (2x2 average pooling between them), Wang et al.'s
    weights, each scale's maps averaged over their valid region; negative terms count as 0 (sides of 161 px on)."""
    if min(preds.shape[-2:]) < MS_SSIM_MIN_SIZE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIZE} px, got {preds.shape[-1]} px")
    x, y = (preds.double() + 1) / 2, (target.double() + 1) / 2
    out = torch.ones(len(x), dtype=torch.float64, device=x.device)
    for i, weight in enumerate(MS_SSIM_WEIGHTS):
        full, cs = _ssim_maps(x, y)
        last = i == len(MS_SSIM_WEIGHTS) - 1
        out = out * ((full if last else cs).flatten(1).mean(1).clamp_min(0) ** weight)
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out.float()


class Scored(NamedTuple):
    """One distortion metric: its per-image `score`, which way is better, how it `reads` the pair, and its
    definition in words (`text`, completed by the reading's)."""

    score: Callable[[Tensor, Tensor], Tensor]
    larger_is_better: bool
    reading: Reading
    text: str


PIXEL_TEXT = {"mse": "mean squared error on [-1, 1] pixels, per image, averaged",
              "psnr": "10 log10(1/MSE) on [0, 1] pixels (peak 1, RGB), per image, averaged; -6.02 dB on [-1, 1]",
              "ssim": "Gaussian 11 px, sigma 1.5, K1 0.01, K2 0.03, on [0, 1], map averaged over its valid region "
                      "(no padding; Wang et al., scikit-image), per image, averaged",
              "ms_ssim": "5 scales, Wang et al. 2003 weights, on [0, 1], valid-region maps, per image, averaged"}


class DistortionMetrics(nn.Module):
    """Every distortion metric the resolution and the given networks allow, as one `update` / `compute`.

    `perceptual`: {name: net with `per_image(x, y) -> [B]`} (LPIPS alex / vgg, the toy perceptual net), each on
    [-1, 1] images at the protocol size; `identity`: a net with `similarity(x, y) -> [B]` (ArcFace, MoCo, the toy
    identity net), fed the prepared images (ArcFace crops its face region from the 256-px image itself).
    `scored`: instead, the metrics as a published script defines them ({name: `Scored`}; `published`), with
    `psnr_dataset` only where given. `preset`: the protocol's name on the metric card. `full_targets`: the
    evaluation should give the targets at the data set's own resolution (the scripts read the original files).
    `fid`: the FID features the protocol prescribes (`build_suite`'s choices), None: the evaluation's `fid` option.
    `sync_on_compute`: sum the states of every DDP rank in `compute` (each rank updated with its shard); False when
    one process evaluates the whole set while the others wait (the metrics callback on rank 0).
    """

    def __init__(self, size: int | None = PROTOCOL_SIZE, perceptual: dict[str, nn.Module] | None = None,
                 identity: nn.Module | None = None, image_size: int | None = None, sync_on_compute: bool = True,
                 preset: str = "ganinv", scored: dict[str, Scored] | None = None,
                 psnr_dataset: Callable[[float], float] | None = None, full_targets: bool = False,
                 fid: str | None = None):
        super().__init__()
        self.size, self.preset, self.full_targets, self.fid = size, str(preset), bool(full_targets), fid
        self.id_name = getattr(identity, "metric_name", "id_sim")  # one name per identity protocol
        if scored is None:
            scored, psnr_dataset = self._own(size, image_size, perceptual or {}, identity), _psnr_of_mean
        self.scored, self.psnr_dataset = scored, psnr_dataset
        skips = bool(getattr(identity, "may_skip", False))
        self.metrics = nn.ModuleDict({k: PerImageMean(s.score, s.reading, s.larger_is_better,
                                                      skips and k == self.id_name, sync_on_compute=sync_on_compute)
                                      for k, s in scored.items()})
        self.perceptual = nn.ModuleDict(perceptual or {})
        self.identity = identity  # also what editability measures identity kept with

    def _own(self, size, image_size, perceptual, identity) -> dict[str, Scored]:
        """ganinv's protocol: every metric reads both images at `size`, as floats."""
        reading, side = Reading(size), size or image_size
        fns = {"mse": (mse, False), "psnr": (psnr, True), "ssim": (ssim, True)}
        if side is not None and side >= MS_SSIM_MIN_SIZE:
            fns["ms_ssim"] = (ms_ssim, True)
        out = {k: Scored(fn, better, reading, PIXEL_TEXT[k]) for k, (fn, better) in fns.items()}
        for name, net in perceptual.items():
            out[name] = Scored(net.per_image, False, reading, f"per-image distance of {name} on [-1, 1] images, "
                                                              "averaged")
        if identity is not None:
            out[self.id_name] = Scored(identity.similarity, True, reading, getattr(identity, "protocol", None) or
                                       "cosine similarity of identity embeddings, per image, averaged")
        return out

    def update(self, preds: Tensor, target: Tensor) -> None:
        for m in self.metrics.values():
            m.update(preds, target)

    def compute(self) -> dict[str, float]:
        out = {k: float(m.compute()) for k, m in self.metrics.items()}
        if self.psnr_dataset is not None:
            out["psnr_dataset"] = self.psnr_dataset(out["mse"])
        if self._skips():
            out[NO_FACE] = float(self.metrics[self.id_name].skipped)
        return out

    def _skips(self) -> bool:
        """Whether the identity metric leaves out pairs it cannot rate (it finds faces)."""
        return self.id_name in self.metrics and self.metrics[self.id_name].may_skip

    def reset(self) -> None:
        for m in self.metrics.values():
            m.reset()

    def protocol(self) -> dict[str, str]:
        """Each metric's definition and how it read the images."""
        out = {k: f"{s.text}; {s.reading.describe()}" for k, s in self.scored.items()}
        if self.psnr_dataset is not None:
            out["psnr_dataset"] = (f"10 log10(1/mean MSE) on [0, 1] pixels (the data set's MSE first); "
                                   f"{self.scored['mse'].reading.describe()}")
        if self._skips():
            out[NO_FACE] = f"image pairs left out of {self.id_name}: a face not found in either image"
        return out

    def card(self) -> dict[str, str]:
        """The metric card: the protocol's name and every choice its metrics make (what the leaderboard compares
        before it ranks records side by side)."""
        return {"preset": self.preset, **self.protocol()}


def _psnr_of_mean(mean_mse: float) -> float:
    return 10 * math.log10(1 / max(mean_mse / 4, 1e-10))
