"""The papers' identity protocol (ReStyle, HyperStyle and their evaluation scripts): each image's face is found on
its own, its five points (eye centres, nose tip, mouth corners) mapped by a similarity transform onto ArcFace's
112-px reference points, and the crop embedded by an IR backbone (CurricularFace IR-101 in those papers); a pair
where either face is not found is left out. Points come from MTCNN (`crop="mtcnn"`: facenet-pytorch's; it and the
papers' port are both conversions of the original networks) or from dlib's 68 landmarks (`crop="dlib"`: the align
extra)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.data import DataError
from ganinv.losses import IdentitySimilarity, arcface_identity

# ArcFace's five reference points in a 112 x 112 crop (eyes, nose tip, mouth corners; pixel-index coordinates).
REFERENCE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                          [70.7299, 92.2041]])
CROPS = ("mtcnn", "dlib")
FACENET = ("facenet-pytorch 2.6 is not installed. Its metadata pins torch<2.3, so no ganinv extra can require "
           "it; its MTCNN runs on current torch: pip install --no-deps facenet-pytorch==2.6.0. Or use "
           "metrics.identity.crop=dlib (pip install 'ganinv[align]').")


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares rotation + uniform scale + shift taking points `src` [N, 2] to `dst` (Umeyama 1991,
    without reflection), as a 2 x 3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ flip @ vt
    scale = np.trace(np.diag(sigma) @ flip) / s.var(0).sum()
    return np.concatenate([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]], 1)


def warp(image: Tensor, matrix: np.ndarray, size: int = 112) -> Tensor:
    """`image` [C, H, W] resampled (bilinear, zeros outside) so that `matrix` (image -> crop pixel coordinates)
    lands it in a `size` x `size` crop."""
    h, w = image.shape[-2:]
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[:size, :size]
    src = np.stack([xs, ys, np.ones_like(xs)], -1) @ inverse.T  # each crop pixel's place in the image
    grid = torch.from_numpy((2 * src + 1) / np.array([w, h]) - 1).to(image)
    return F.grid_sample(image[None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def _uint8(x: Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> [B, H, W, 3] uint8, as the scripts read saved images."""
    return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


class MTCNNPoints:
    """Five points of the most confident face per image (facenet-pytorch's MTCNN), or None."""

    def __init__(self):
        if importlib.util.find_spec("facenet_pytorch") is None:
            raise DataError(f"metrics.identity.crop=mtcnn: {FACENET}")
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(select_largest=False, post_process=False, device="cpu")

    def __call__(self, images: np.ndarray) -> list[np.ndarray | None]:
        _, _, points = self.mtcnn.detect(list(images), landmarks=True)
        return [None if p is None else np.asarray(p[0], dtype=np.float64) for p in points]


class DlibPoints:
    """Five points of the largest face per image from dlib's 68 landmarks, or None."""

    def __init__(self):
        from ganinv.data.landmarks import shared

        self.finder = shared()

    def __call__(self, images: np.ndarray) -> list[np.ndarray | None]:
        from ganinv.data.landmarks import five_points

        return [five_points(f[0]) if (f := self.finder.faces(im)) else None for im in images]


class FivePointIdentity(IdentitySimilarity):
    """Identity similarity on five-point face crops, reported as `id_sim_papers`; `similarity` is NaN for a pair
    where a face is not found (`may_skip`: the metrics leave those out and count them as `no_face_pairs`)."""

    may_skip, metric_name = True, "id_sim_papers"

    def __init__(self, embedder: nn.Module, crop: str = "mtcnn", protocol: str = ""):
        super().__init__(embedder)
        if crop not in CROPS:
            raise DataError(f"metrics.identity.crop={crop!r} is not one of {', '.join(CROPS)}.")
        self.points = MTCNNPoints() if crop == "mtcnn" else DlibPoints()
        self.protocol = protocol

    def crops(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """112-px crops [B, 3, 112, 112] and whether each face was found [B]."""
        found = self.points(_uint8(x))
        crops = [warp(img, similarity_transform(p, REFERENCE_112)) if p is not None else img.new_zeros(3, 112, 112)
                 for img, p in zip(x, found)]
        return torch.stack(crops), torch.tensor([p is not None for p in found], device=x.device)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        (ca, fa), (cb, fb) = self.crops(a), self.crops(b)
        sim = (self.embed(ca) * self.embed(cb)).sum(1)
        return torch.where(fa & fb, sim, torch.full_like(sim, float("nan")))

    def forward(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return 1 - self.similarity(y_hat, y).nanmean()


def papers_identity(path: str | os.PathLike, crop: str = "mtcnn") -> FivePointIdentity:
    """The papers' identity metric: an IR backbone file (CurricularFace_Backbone.pth in ReStyle / HyperStyle;
    any IR-50/100/152 `arcface_identity` reads) on five-point crops from `crop`."""
    net = arcface_identity(path).embedder
    finder = "facenet-pytorch's MTCNN (most confident face)" if crop == "mtcnn" else \
        "dlib's 68 landmarks (largest face)"
    text = (f"cosine similarity of {os.path.basename(str(path))} embeddings of 112-px five-point crops (points "
            f"from {finder}, similarity transform onto ArcFace's reference points), each image's face found on "
            "its own; pairs with a face not found are left out (no_face_pairs counts them), per pair, averaged")
    return FivePointIdentity(net, crop, text)
