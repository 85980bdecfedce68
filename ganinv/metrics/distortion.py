"""Distortion metrics as torchmetrics `Metric`s (sums and counts synced across DDP ranks).

The protocol of the papers' scripts: both images clamped to [-1, 1] and resized to `size` (256 px for real
domains; `size=None` keeps the toy domain's own 64 px), each metric computed per image, then averaged over
images. PSNR is 10·log10(1 / MSE) on [0, 1] pixels (peak 1, RGB, every pixel and channel), per image, then
averaged; `DistortionMetrics` also reports `psnr_dataset`, the PSNR of the data set's mean MSE (what scripts that
average the MSE first print; never above the per-image mean). On [-1, 1] pixels with peak 1 it would read
6.02 dB lower. See docs/evaluation.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric

from ganinv.data.transforms import PROTOCOL_SIZE, resize

MS_SSIM_MIN_SIZE = 161  # five scales of an 11-px Gaussian window: the coarsest side must stay above 10 px


def prepare(images: Tensor, size: int | None) -> Tensor:
    """The protocol's input: float, clamped to [-1, 1], resized (antialiased) to `size` unless None."""
    images = images.float().clamp(-1, 1)
    return images if size is None else resize(images, size)


NO_FACE = "no_face_pairs"  # the count of pairs an identity protocol that finds faces could not rate


class PerImageMean(Metric):
    """Mean over images of `score(preds, target) -> [B]`, both prepared by `prepare(·, size)`."""

    full_state_update = False

    def __init__(self, score: Callable[[Tensor, Tensor], Tensor] | None = None, size: int | None = PROTOCOL_SIZE,
                 larger_is_better: bool = False, may_skip: bool = False, **kwargs):
        super().__init__(**kwargs)
        if score is not None:
            self.score = score
        self.larger_is_better, self.size, self.may_skip = larger_is_better, size, may_skip
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("skipped", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def score(self, preds: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.shape[0] != target.shape[0]:
            raise ValueError(f"{type(self).__name__}: {preds.shape[0]} reconstructions for {target.shape[0]} targets")
        with torch.no_grad():
            s = self.score(prepare(preds, self.size), prepare(target, self.size))
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


class DistortionMetrics(nn.Module):
    """Every distortion metric the resolution and the given networks allow, as one `update` / `compute`.

    `perceptual`: {name: net with `per_image(x, y) -> [B]`} (LPIPS alex / vgg, the toy perceptual net), each on
    [-1, 1] images at the protocol size; `identity`: a net with `similarity(x, y) -> [B]` (ArcFace, MoCo, the toy
    identity net), fed the prepared images (ArcFace crops its face region from the 256-px image itself).
    `sync_on_compute`: sum the states of every DDP rank in `compute` (each rank updated with its shard); False when
    one process evaluates the whole set while the others wait (the metrics callback on rank 0).
    """

    def __init__(self, size: int | None = PROTOCOL_SIZE, perceptual: dict[str, nn.Module] | None = None,
                 identity: nn.Module | None = None, image_size: int | None = None, sync_on_compute: bool = True):
        super().__init__()
        self.size = size
        side = size or image_size
        scores: dict[str, tuple[Callable, bool]] = {"mse": (mse, False), "psnr": (psnr, True), "ssim": (ssim, True)}
        if side is not None and side >= MS_SSIM_MIN_SIZE:
            scores["ms_ssim"] = (ms_ssim, True)
        for name, net in (perceptual or {}).items():
            scores[name] = (net.per_image, False)
        self.id_name = getattr(identity, "metric_name", "id_sim")  # one name per identity protocol
        if identity is not None:
            scores[self.id_name] = (identity.similarity, True)
        skips = bool(getattr(identity, "may_skip", False))
        self.metrics = nn.ModuleDict({k: PerImageMean(fn, size, better, skips and k == self.id_name,
                                                      sync_on_compute=sync_on_compute)
                                      for k, (fn, better) in scores.items()})
        self.perceptual = nn.ModuleDict(perceptual or {})
        self.identity = identity  # also what editability measures identity kept with

    def update(self, preds: Tensor, target: Tensor) -> None:
        for m in self.metrics.values():
            m.update(preds, target)

    def compute(self) -> dict[str, float]:
        out = {k: float(m.compute()) for k, m in self.metrics.items()}
        out["psnr_dataset"] = 10 * math.log10(1 / max(out["mse"] / 4, 1e-10))
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
        where = f"both images resized to {self.size} px" if self.size else "at the images' own size"
        text = {"mse": "mean squared error on [-1, 1] pixels, per image, averaged",
                "psnr": "10 log10(1/MSE) on [0, 1] pixels (peak 1, RGB), per image, averaged; -6.02 dB on [-1, 1]",
                "psnr_dataset": "10 log10(1/mean MSE) on [0, 1] pixels (the data set's MSE first)",
                "ssim": "Gaussian 11 px, sigma 1.5, K1 0.01, K2 0.03, on [0, 1], map averaged over its valid "
                        "region (no padding; Wang et al., scikit-image), per image, averaged",
                "ms_ssim": "5 scales, Wang et al. 2003 weights, on [0, 1], valid-region maps, per image, averaged",
                self.id_name: getattr(self.identity, "protocol", None) or "cosine similarity of identity "
                              "embeddings, per image, averaged"}
        out = {k: f"{text.get(k, 'per-image distance of ' + k + ' on [-1, 1] images, averaged')}; {where}"
               for k in [*self.metrics, "psnr_dataset"]}
        if self._skips():
            out[NO_FACE] = f"image pairs left out of {self.id_name}: a face not found in either image"
        return out
