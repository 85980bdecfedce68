"""FFHQ alignment and paste-back.

FFHQ's published procedure (Karras et al. 2019, ffhq-dataset): from 68 landmarks, the eye centres and mouth corners
give an oriented square (the quad) around the face; the photo is shrunk when the quad is much larger than the
output, cropped to the quad plus a border, padded by reflection (blurred and faded to the median colour) where the
quad leaves the photo, sampled bilinearly at 4x the output size and resized down. Every official encoder was trained
on such crops. `Alignment` keeps the landmarks and the quad, which is all `unalign` needs to paste an (edited) crop
back into the photo.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageOps

from .transforms import to_rgb

SUPERSAMPLE = 4  # FFHQ samples the quad at 4096 px for its 1024-px crops


def open_photo(path: str | os.PathLike) -> Image.Image:
    """A photo as 8-bit RGB, upright (EXIF orientation applied); grey, alpha, palette, CMYK and 16-bit converted."""
    with Image.open(path) as img:
        img.load()
        return to_rgb(ImageOps.exif_transpose(img))


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """FFHQ's oriented crop square from 68 landmarks: corners [4, 2] (top-left, bottom-left, bottom-right,
    top-right of the crop) in the photo's pixel-index coordinates."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    # The crop's x axis: the eye line and the eye-mouth line rotated by 90 degrees, averaged by their sum.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x = x / np.hypot(*x) * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


@dataclass
class Alignment:
    """Where one crop came from: the photo (name relative to the aligned folder's input, size after EXIF
    orientation), the face's 68 landmarks and FFHQ quad in that photo, and the crop's size."""

    photo: str
    photo_size: tuple[int, int]
    landmarks: list[list[float]]
    quad: list[list[float]]
    size: int

    @classmethod
    def of(cls, photo: str, image: Image.Image, landmarks: np.ndarray, size: int) -> Alignment:
        return cls(photo, tuple(image.size), np.round(landmarks, 3).tolist(), np.round(ffhq_quad(landmarks), 4)
                   .tolist(), int(size))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Alignment:
        return cls(data["photo"], tuple(data["photo_size"]), data["landmarks"], data["quad"], int(data["size"]))

    def fractions(self, points: np.ndarray) -> np.ndarray:
        """Photo pixel coordinates [..., 2] -> where they are in the crop, as fractions of its side (0 to 1 inside)."""
        q = np.asarray(self.quad)
        basis = np.stack([q[3] - q[0], q[1] - q[0]], 1)  # columns: the crop's x and y edges in the photo
        pts = np.asarray(points, dtype=np.float64)
        return np.linalg.solve(basis, (pts.reshape(-1, 2) - q[0]).T).T.reshape(pts.shape)

    def to_crop(self, points: np.ndarray, size: int | None = None) -> np.ndarray:
        """Photo pixel coordinates [..., 2] -> the crop's pixel coordinates (at `size`, default its own)."""
        return self.fractions(points) * (size or self.size) - 0.5


def align(image: Image.Image, landmarks: np.ndarray, size: int = 1024) -> Image.Image:
    """The FFHQ crop (`size` x `size`, RGB) of the face with these landmarks."""
    img = image.convert("RGB")
    quad = ffhq_quad(landmarks)
    qsize = np.hypot(*(quad[3] - quad[0]))
    # Shrink a photo much larger than the crop (anti-aliased), moving the quad with it.
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        small = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
        scale = np.array(small) / np.array(img.size)
        img = img.resize(small, Image.LANCZOS)
        quad, qsize = (quad + 0.5) * scale - 0.5, qsize * scale.mean()
    # Crop to the quad and a border.
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    box = (max(lo[0] - border, 0), max(lo[1] - border, 0), min(hi[0] + border, img.size[0]),
           min(hi[1] + border, img.size[1]))
    if box[2] - box[0] < img.size[0] or box[3] - box[1] < img.size[1]:
        img, quad = img.crop(box), quad - box[:2]
    # Pad where the quad leaves the photo: reflection, blurred and faded to the median towards the outside.
    lo, hi = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = np.array([max(-lo[0] + border, 0), max(-lo[1] + border, 0), max(hi[0] - img.size[0] + border, 0),
                    max(hi[1] - img.size[1] + border, 0)])
    if pad.max() > border - 4:
        img, offset = _pad(img, np.maximum(pad, int(np.rint(qsize * 0.3))), qsize)
        quad = quad + offset
    # Sample the quad (pixel centres at +0.5 in PIL's coordinates), then resize to the output.
    side = size * SUPERSAMPLE
    img = img.transform((side, side), Image.QUAD, (quad + 0.5).flatten().tolist(), Image.BILINEAR)
    return img.resize((size, size), Image.LANCZOS)


def _pad(img: Image.Image, pad: np.ndarray, qsize: float) -> tuple[Image.Image, np.ndarray]:
    """FFHQ's padding (left, top, right, bottom): reflect, blur towards the edge, fade to the median colour."""
    arr = np.pad(np.asarray(img, dtype=np.float32), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
    h, w, _ = arr.shape
    y, x = np.ogrid[:h, :w]
    inside = np.maximum(1.0 - np.minimum(x / max(pad[0], 1), (w - 1 - x) / max(pad[2], 1)),
                        1.0 - np.minimum(y / max(pad[1], 1), (h - 1 - y) / max(pad[3], 1)))[..., None]
    blurred = np.asarray(Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)))
                         .filter(ImageFilter.GaussianBlur(qsize * 0.02)), dtype=np.float32)
    arr += (blurred - arr) * np.clip(inside * 3.0 + 1.0, 0.0, 1.0)
    arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(inside, 0.0, 1.0)
    return Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255))), pad[:2].astype(np.float64)


def unalign(photo: Image.Image, crop: Image.Image, alignment: Alignment, feather: float = 0.1) -> Image.Image:
    """`photo` with `crop` (any size; e.g. an edit of the aligned crop) pasted back where it came from: the inverse
    of the quad's transform, bilinear, blended in over a border of `feather` x the crop's side."""
    if tuple(photo.size) != tuple(alignment.photo_size):
        raise ValueError(f"the photo is {photo.size[0]}x{photo.size[1]} but {alignment.photo} was aligned at "
                         f"{alignment.photo_size[0]}x{alignment.photo_size[1]}")
    q = np.asarray(alignment.quad)
    w, h = photo.size
    lo = np.clip(np.floor(q.min(0)).astype(int), 0, [w, h])
    hi = np.clip(np.ceil(q.max(0)).astype(int) + 1, 0, [w, h])
    out = np.asarray(photo.convert("RGB"), dtype=np.float32).copy()
    if (hi <= lo).any():
        return Image.fromarray(out.astype(np.uint8))  # the quad lies outside the photo
    ys, xs = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]]
    frac = alignment.fractions(np.stack([xs, ys], -1))  # where each photo pixel is in the crop
    src = torch.from_numpy(np.asarray(crop.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
    grid = torch.from_numpy(frac * 2 - 1).float()[None]
    pasted = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    edge = np.minimum(frac, 1 - frac).min(-1)  # distance to the crop's nearest edge, in crop sides
    weight = np.clip(edge / max(feather, 1e-6), 0.0, 1.0)[..., None] if feather > 0 else (edge >= 0)[..., None]
    region = out[lo[1]:hi[1], lo[0]:hi[0]]
    region += (pasted.permute(1, 2, 0).numpy() - region) * weight
    return Image.fromarray(np.uint8(np.clip(np.rint(out), 0, 255)))


def crop_names(stem: str, n: int) -> list[str]:
    """The crops of one photo with `n` faces: `<stem>.png`, then `<stem>_1.png`, `<stem>_2.png`, ..."""
    return [f"{stem}.png" if k == 0 else f"{stem}_{k}.png" for k in range(n)]
