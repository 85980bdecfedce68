"""Image decoding and conversion, resizing, and the per-item train/eval transform of the data pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

CROPS = ("center", "none")
# The papers' image size for real faces: encoder inputs, loss and metric comparisons (pSp's face_pool of a
# 1024-px generator); a smaller generator uses its own size.
PROTOCOL_SIZE = 256


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: 16-bit and float scaled down, alpha composited on white, CMYK/palette converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        top = 1.0 if img.mode == "F" and arr.max() <= 1.0 else top
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def square(img: Image.Image, crop: str) -> Image.Image:
    """Centre-crop to a square (`crop="center"`), or keep the whole frame to be squashed (`"none"`)."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    w, h = img.size
    if crop == "none" or w == h:
        return img
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def load_image(path: Path, resolution: int, crop: str = "center") -> Tensor:
    """Decode an image file to float [3, R, R] in [-1, 1]; raises OSError/ValueError on unreadable files."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (resolution, resolution))  # decode at a reduced DCT scale: much faster for big files
        img = square(to_rgb(ImageOps.exif_transpose(img)), crop)
        img = img.resize((resolution, resolution), Image.BICUBIC, reducing_gap=3.0)
        arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def load_map(path: Path, resolution: int, kind: str, crop: str = "center") -> Tensor:
    """A paired map: class ids [R, R] int64 (`segmentation`, nearest) or a sketch [1, R, R] in [-1, 1]."""
    with Image.open(path) as img:
        if kind == "segmentation":
            img = square(img if img.mode in ("L", "P", "I", "I;16") else img.convert("L"), crop)
            arr = np.asarray(img.resize((resolution, resolution), Image.NEAREST)).astype(np.int64)
            return torch.from_numpy(arr.copy())
        img = square(to_rgb(img).convert("L"), crop).resize((resolution, resolution), Image.BILINEAR)
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).float().div_(127.5).sub_(1.0)[None]


def resize(x: Tensor, size: int, mode: str = "bilinear") -> Tensor:
    """Resize [C, H, W] or [B, C, H, W] to size x size; antialiased when shrinking, exact when unchanged."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    batched = x.unsqueeze(0) if x.ndim == 3 else x
    if mode == "nearest":
        out = F.interpolate(batched.float(), size=(size, size), mode="nearest").to(x.dtype)
    else:
        out = F.interpolate(batched, size=(size, size), mode=mode, align_corners=False,
                            antialias=size < x.shape[-1])
    return out[0] if x.ndim == 3 else out


FLIPPABLE = ("image", "frontal", "segmentation", "sketch")


def hflip(item: dict) -> dict:
    """Mirror an item: images and maps flip; the toy yaw attribute changes sign with them."""
    out = dict(item)
    for key in FLIPPABLE:
        if key in out:
            out[key] = out[key].flip(-1)
    if "attrs" in out:
        from ganinv.toy.attributes import INDEX

        out["attrs"] = out["attrs"].clone()
        out["attrs"][INDEX["yaw"]] = -out["attrs"][INDEX["yaw"]]
    return out


class TaskTransform:
    """Turns a source item into a training pair: optional flip, x = task(image) at `input_size`, y at `target_size`.

    As in the official pSp / e4e / ReStyle pipelines: random horizontal flip for training only, inputs resized to
    the encoder size, targets to the resolution the losses use, everything in [-1, 1].
    """

    def __init__(self, task, input_size: int, target_size: int, flip: bool):
        self.task, self.input_size, self.target_size, self.flip = task, input_size, target_size, flip

    def __call__(self, item: dict, gen: torch.Generator) -> dict:
        if self.flip and torch.rand((), generator=gen) < 0.5:
            item = hflip(item)
        target = item[self.task.target]
        out = {"y": resize(target, self.target_size).clamp_(-1, 1), "index": item["index"]}
        out.update(self.task(item, self.input_size, gen))
        for key in ("attrs", "w"):
            if key in item:
                out[key] = item[key]
        return out
