"""How a metric reads an image pair: ganinv's own way (float images, clamped, resized with an antialiased
bilinear filter) or as a published script reads them (reconstructions saved as 8-bit files, truncated as
`tensor2im` and `.to(torch.uint8)` do; files resized by PIL as torchvision's `Resize` does on a PIL image)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganinv.data.transforms import resize

QUANTISE = ("none", "truncate")  # truncate: floor(255 (x + 1) / 2), what the scripts' image saving does
RESIZE = ("torch", "pil")  # torch: bilinear, antialiased when shrinking, on floats; pil: on 8-bit images
PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def saved(images: Tensor) -> Tensor:
    """[-1, 1] images as the scripts save them (8 bits, truncated), back in [-1, 1]."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).clamp(0, 255).floor() / 127.5 - 1


def to_uint8(images: Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> [B, H, W, 3] uint8, rounded (exact for images read from 8-bit files)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def pil_resize(images: Tensor, size: int, resample: str = "bilinear") -> Tensor:
    """Each image as an 8-bit file resized by PIL to `size` (torchvision's `Resize((size, size))` on a PIL image),
    then read back as `ToTensor` + `Normalize(0.5, 0.5)` do, in [-1, 1]."""
    out = [np.asarray(Image.fromarray(a).resize((size, size), PIL_FILTERS[resample])) for a in to_uint8(images)]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).to(images.device)


class Reading:
    """Turns (reconstructions, targets) in [-1, 1] into what one metric scores: reconstructions `quantise`d,
    both clamped, each side resized to `size` (None: kept) by `preds_resize` / `target_resize` ("torch" or
    "pil") with `resample`."""

    def __init__(self, size: int | None, quantise: str = "none", preds_resize: str = "torch",
                 target_resize: str = "torch", resample: str = "bilinear"):
        if quantise not in QUANTISE or {preds_resize, target_resize} - set(RESIZE) or resample not in PIL_FILTERS:
            raise ValueError(f"Reading: quantise in {QUANTISE}, resize in {RESIZE}, resample in {tuple(PIL_FILTERS)}")
        self.size, self.quantise, self.resample = size, quantise, resample
        self.preds_resize, self.target_resize = preds_resize, target_resize

    def __call__(self, preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        p = saved(preds) if self.quantise == "truncate" else preds.float().clamp(-1, 1)
        return self._resize(p, self.preds_resize), self._resize(target.float().clamp(-1, 1), self.target_resize)

    def _resize(self, x: Tensor, how: str) -> Tensor:
        if self.size is None:
            return x
        return resize(x, self.size) if how == "torch" else pil_resize(x, self.size, self.resample)

    def describe(self) -> str:
        """The reading in words, for a record's protocol and metric card."""
        images = ("reconstructions as saved 8-bit files (truncated)" if self.quantise == "truncate" else
                  "float images clamped to [-1, 1]")
        if self.size is None:
            return f"{images}, at their own size"
        how = {"torch": "bilinear antialiased on floats", "pil": f"PIL {self.resample} on 8-bit images"}
        sides = (f"both resized to {self.size} px ({how[self.preds_resize]})" if self.preds_resize == self.target_resize
                 else f"resized to {self.size} px: reconstructions {how[self.preds_resize]}, targets "
                      f"{how[self.target_resize]}")
        return f"{images}; {sides}"
