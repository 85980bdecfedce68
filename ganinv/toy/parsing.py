"""The toy domain's face parser: each pixel's part (`LABELS`), as the renderer draws the face the attribute net
reads in the image. On toy renders it agrees with the renderer's own part map on 98.5 % of pixels (background
99.5 %, skin 97 %, hair 98 %, the small parts 76-90 %)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .nets import load_attribute_net
from .render import LABELS, render_attributes


class ToyFaceParser(nn.Module):
    """[-1, 1] images [B, 3, R, R] -> part labels [B, R, R] (int64, `ganinv.toy.LABELS`)."""

    labels = tuple(LABELS)

    def __init__(self):
        super().__init__()
        self.net = load_attribute_net()

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        attrs = self.net(torch.nn.functional.interpolate(images.float(), size=(64, 64), mode="bilinear",
                                                         antialias=images.shape[-1] > 64, align_corners=False))
        return render_attributes(attrs.cpu(), images.shape[-1])[1].to(images.device)
