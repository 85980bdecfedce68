"""Signed-distance primitives and an anti-aliased compositing canvas, vectorised over a batch of faces.

Coordinates: x to the right, y down, both in [-1, 1]. Shape parameters are [B, 1, 1, 1] tensors (or floats)
that broadcast against the [1, 1, H, W] pixel grid; every distance is in the same units as the coordinates.
"""

from __future__ import annotations

import torch
from torch import Tensor


def ellipse(x: Tensor, y: Tensor, cx, cy, rx, ry) -> Tensor:
    """Approximate signed distance to an axis-aligned ellipse (first-order, exact on the boundary)."""
    px, py = x - cx, y - cy
    k0 = torch.sqrt((px / rx) ** 2 + (py / ry) ** 2 + 1e-12)
    k1 = torch.sqrt((px / (rx * rx)) ** 2 + (py / (ry * ry)) ** 2 + 1e-12)
    return k0 * (k0 - 1.0) / k1


def circle(x: Tensor, y: Tensor, cx, cy, r) -> Tensor:
    return torch.sqrt((x - cx) ** 2 + (y - cy) ** 2 + 1e-12) - r


def capsule(x: Tensor, y: Tensor, ax, ay, bx, by, r) -> Tensor:
    """Distance to the segment a-b, minus the half-thickness `r` (a stroke with round ends)."""
    pax, pay, bax, bay = x - ax, y - ay, bx - ax, by - ay
    h = ((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-12)).clamp(0, 1)
    return torch.sqrt((pax - bax * h) ** 2 + (pay - bay * h) ** 2 + 1e-12) - r


def arc(x: Tensor, y: Tensor, cx, cy, half_width, bend, r) -> Tensor:
    """Stroke along y = cy + bend * (1 - (dx / half_width)^2) for |dx| <= half_width (a mouth or a lid)."""
    dx = x - cx
    u = dx / half_width
    f = cy + bend * (1 - u * u)
    slope = -2 * bend * u / half_width
    d = (y - f).abs() / torch.sqrt(1 + slope * slope)
    return torch.maximum(d - r, dx.abs() - half_width)


def ring(d: Tensor, r) -> Tensor:
    """The outline of shape `d` with half-thickness `r`."""
    return d.abs() - r


class Canvas:
    """Paints shapes back to front with anti-aliased coverage and records a label map alongside.

    `x` is [1, 1, 1, W] and `y` is [1, 1, H, 1] so that terms in one coordinate stay cheap; `window` returns a
    Canvas over a rectangle of the same storage, so small features are not evaluated over the whole image.
    """

    def __init__(self, batch: int, resolution: int, background: Tensor, zoom: float = 1.0):
        step = 2.0 * zoom / resolution
        coords = torch.linspace(-zoom + step / 2, zoom - step / 2, resolution)
        self.x, self.y = coords.view(1, 1, 1, -1), coords.view(1, 1, -1, 1)
        self.pixel, self.zoom = step, zoom
        self.image = background.expand(batch, 3, resolution, resolution).contiguous()
        self.labels = torch.zeros(batch, resolution, resolution, dtype=torch.uint8)

    def window(self, x0: float, x1: float, y0: float, y1: float) -> Canvas:
        """The part of the canvas inside [x0, x1] x [y0, y1] (views: painting it paints the canvas)."""
        n = self.image.shape[-1]
        c0, c1 = (min(n, max(0, round((v + self.zoom) / self.pixel))) for v in (x0, x1))
        r0, r1 = (min(n, max(0, round((v + self.zoom) / self.pixel))) for v in (y0, y1))
        sub = object.__new__(Canvas)
        sub.pixel, sub.zoom = self.pixel, self.zoom
        sub.x, sub.y = self.x[..., c0:c1], self.y[..., r0:r1, :]
        sub.image, sub.labels = self.image[..., r0:r1, c0:c1], self.labels[..., r0:r1, c0:c1]
        return sub

    def paint(self, d: Tensor, colour: Tensor, label: int | None = None, opacity: Tensor | float = 1.0) -> Tensor:
        """Composite `colour` ([B, 3, 1, 1] or per pixel) where `d` < 0, in place; returns the coverage used."""
        a = (0.5 - d / self.pixel).clamp_(0, 1)
        if not (isinstance(opacity, float) and opacity == 1.0):
            a = a * opacity
        a = a.expand(self.image.shape[0], 1, *self.image.shape[2:])
        self.image.lerp_(colour.expand_as(self.image), a)
        if label is not None:
            self.labels.masked_fill_(a[:, 0] > 0.5, label)
        return a
