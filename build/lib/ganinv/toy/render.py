"""Procedural cartoon faces with known attributes: the embedded toy domain.

`render(n, resolution, seed)` samples attribute vectors (layout in `ganinv.toy.attributes.ATTRIBUTES`) and draws
every face at once with signed distances and anti-aliased compositing, so a batch costs a few hundred tensor ops.
Head pose is a rotation of the features on a cylinder around the head axis, so the frontal render is the same
face with yaw = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .attributes import INDEX, NUM_ATTRIBUTES, sample_attributes
from .sdf import Canvas, arc, capsule, ellipse, ring

LABELS = ("background", "skin", "nose", "eyes", "brows", "mouth", "hair", "glasses", "clothes")
NUM_LABELS = len(LABELS)
MAX_YAW = math.radians(32)
ZOOM = 0.82  # half-width of the view: the head fills most of the frame, as in aligned face data
_L = {name: i for i, name in enumerate(LABELS)}

SKIN = torch.tensor([[1.00, 0.86, 0.74], [0.90, 0.68, 0.52], [0.66, 0.45, 0.30], [0.40, 0.26, 0.17]])
HAIR = torch.tensor([[0.10, 0.08, 0.07], [0.36, 0.22, 0.12], [0.62, 0.26, 0.12], [0.93, 0.78, 0.45]])
GREY_HAIR = torch.tensor([0.84, 0.84, 0.86])


@dataclass
class ToyBatch:
    """Renders of `n` faces. Images are float in [-1, 1]; attrs follow `ganinv.toy.attributes.ATTRIBUTES`."""

    images: Tensor  # [n, 3, R, R]
    attrs: Tensor  # [n, NUM_ATTRIBUTES]
    segmentation: Tensor  # [n, R, R] int64 labels, names in LABELS
    sketches: Tensor  # [n, 1, R, R] dark lines (-1) on white (+1)
    frontal: Tensor  # [n, 3, R, R] the same faces with yaw = 0


def render(n: int, resolution: int = 64, seed: int = 0, attrs: Tensor | None = None,
           frontal: bool = True) -> ToyBatch:
    """Render `n` random faces (deterministic in `seed`), or the given attribute vectors [n, NUM_ATTRIBUTES]."""
    attrs = sample_attributes(n, seed) if attrs is None else attrs.float().cpu()
    if attrs.shape != (n, NUM_ATTRIBUTES):
        raise ValueError(f"attrs must have shape [{n}, {NUM_ATTRIBUTES}], got {list(attrs.shape)}")
    images, labels = render_attributes(attrs, resolution)
    if frontal:
        front = attrs.clone()
        front[:, INDEX["yaw"]] = 0
        front_images = render_attributes(front, resolution)[0]
    else:
        front_images = torch.empty(0, 3, resolution, resolution)
    return ToyBatch(images, attrs, labels, sketch(labels), front_images)


def render_attributes(attrs: Tensor, resolution: int = 64) -> tuple[Tensor, Tensor]:
    """Images [B, 3, R, R] in [-1, 1] and label maps [B, R, R] (int64) for attribute vectors [B, A]."""
    if resolution < 16:
        raise ValueError(f"resolution must be at least 16 px, got {resolution}")
    a = {name: attrs[:, i].view(-1, 1, 1, 1) for name, i in INDEX.items()}
    canvas = Canvas(attrs.shape[0], resolution, _background(a["background"], resolution), ZOOM)
    FaceDrawer(canvas, a).draw()
    return canvas.image.clamp(0, 1) * 2 - 1, canvas.labels.long()


def sketch(labels: Tensor) -> Tensor:
    """Edges of the label map as a pencil sketch: -1 on part boundaries, +1 elsewhere; [B, 1, R, R]."""
    edge = torch.zeros_like(labels, dtype=torch.bool)
    edge[:, :, 1:] |= labels[:, :, 1:] != labels[:, :, :-1]
    edge[:, 1:, :] |= labels[:, 1:, :] != labels[:, :-1, :]
    return (1 - 2 * edge.float()).unsqueeze(1)


def _palette(table: Tensor, t: Tensor) -> Tensor:
    """Piecewise-linear colour ramp through the rows of `table` for t in [0, 1]; [B, 3, 1, 1]."""
    pos = t.flatten().clamp(0, 1) * (len(table) - 1)
    lo = pos.floor().long().clamp(max=len(table) - 2)
    w = (pos - lo).unsqueeze(1)
    return torch.lerp(table[lo], table[lo + 1], w).view(-1, 3, 1, 1)


def _hue(h: Tensor, saturation: float, value: float) -> Tensor:
    phase = torch.tensor([0.0, 1 / 3, 2 / 3]).view(1, 3, 1, 1)
    return value - saturation * torch.cos(2 * math.pi * (h + phase))


def _background(h: Tensor, resolution: int) -> Tensor:
    # 0.85 of the hue circle, so that the attribute does not wrap around (0 and 1 are different colours).
    ramp = torch.linspace(1.08, 0.88, resolution).view(1, 1, resolution, 1)
    return (_hue(0.85 * h, 0.22, 0.68) * ramp).clamp(0, 1)


class FaceDrawer:
    """Draws one batch of faces onto a Canvas, back to front: hair, body, head, features, hair, glasses.

    Each part paints only a window of the canvas that bounds it for every attribute value.
    """

    def __init__(self, canvas: Canvas, a: dict[str, Tensor]):
        self.c, self.a = canvas, a
        self.t = a["yaw"] * MAX_YAW
        self.rx = 0.40 + 0.12 * a["face_width"]
        self.ry = 0.52
        self.cx, self.cy = 0.0, -0.02
        age = a["age"]
        skin = _palette(SKIN, a["skin_tone"])
        self.skin = torch.lerp(skin, skin.mean(1, keepdim=True) * 1.05, 0.35 * age)
        hair = _palette(HAIR, a["hair_colour"])
        self.hair = torch.lerp(hair, GREY_HAIR.view(1, 3, 1, 1), (age * 1.6 - 0.55).clamp(0, 1))
        self.eye_phi = torch.asin((0.15 + 0.09 * a["eye_spacing"]) / self.rx)

    def on_head(self, phi: Tensor | float, depth: float = 1.0) -> tuple[Tensor, Tensor]:
        """x position and horizontal foreshortening of a feature at angle `phi` on the rotated head."""
        ang = phi + self.t
        return self.cx + depth * self.rx * torch.sin(ang), torch.cos(ang).clamp(min=0.15)

    def draw(self) -> None:
        for part in (self.hair_back, self.body, self.head, self.eyes, self.nose, self.mouth, self.hair_front,
                     self.glasses):
            part()

    def hair_back(self) -> None:
        w = self.c.window(-0.7, 0.7, -0.7, 1.0)
        x, y, length = w.x, w.y, self.a["hair_length"]
        d = ellipse(x, y, self.cx - 0.05 * torch.sin(self.t), self.cy + 0.25 * length,
                    self.rx + 0.09, self.ry + 0.1 + 0.3 * length)
        w.paint(torch.maximum(d, y - (self.cy + 0.15 + 0.75 * length)), self.hair * 0.8, _L["hair"])

    def body(self) -> None:
        w = self.c.window(-1, 1, 0.2, 1)
        x, y = w.x, w.y
        hue = (self.a["hair_colour"] * 2.3 + self.a["skin_tone"] * 1.7 + self.a["eye_size"]) % 1
        neck = capsule(x, y, self.cx + 0.05 * torch.sin(self.t), self.cy + 0.3, self.cx, 0.8,
                       0.12 + 0.04 * self.a["face_width"])
        w.paint(neck, self.skin * 0.82, _L["skin"])
        w.paint(ellipse(x, y, 0.0, 0.6, 0.15, 0.05), self.skin * 0.72, _L["skin"])
        w.paint(ellipse(x, y, 0.0, 1.02, 0.78, 0.38), _hue(hue, 0.25, 0.5), _L["clothes"])
        w.paint(arc(x, y, 0.0, 0.64, 0.16, 0.06, 0.012), _hue(hue, 0.2, 0.35), None)

    def ears(self, w: Canvas, inner: bool) -> None:
        """Ears on the sides of the head, faded out once they turn behind it."""
        for side in (-1.0, 1.0):
            ex, _ = self.on_head(side * math.pi / 2)
            vis = (torch.cos(side * math.pi / 2 + self.t) * 6 + 1).clamp(0, 1)
            if inner:
                w.paint(ellipse(w.x, w.y, ex, self.cy + 0.05, 0.035, 0.07), self.skin * 0.75, None, vis * 0.6)
            else:
                w.paint(ellipse(w.x, w.y, ex, self.cy + 0.05, 0.07 + 0.01 * vis, 0.12), self.skin * 0.92,
                        _L["skin"], vis)

    def head(self) -> None:
        w = self.c.window(-0.65, 0.65, -0.6, 0.55)
        x, y = w.x, w.y
        self.ears(w, inner=False)
        # The jaw narrows the lower half of the head: rx shrinks with depth below the centre.
        below = ((y - self.cy) / self.ry).clamp(min=0)
        rx = self.rx * (1 - (0.1 + 0.28 * self.a["jaw"]) * below * below)
        lx, _ = self.on_head(-0.5, 0.8)
        shade = (1.06 - 0.45 * ((x - lx) ** 2 + (y - self.cy + 0.25) ** 2)).clamp(0.7, 1.1)
        w.paint(ellipse(x, y, self.cx, self.cy, rx, self.ry), self.skin * shade, _L["skin"])
        self.ears(w, inner=True)
        blush = torch.tensor([0.95, 0.45, 0.45]).view(1, 3, 1, 1)
        for side in (-1.0, 1.0):
            bx, fore = self.on_head(side * 0.75, 0.95)
            w.paint(ellipse(x, y, bx, self.cy + 0.2, 0.07 * fore, 0.045), blush, None, 0.22)

    def eyes(self) -> None:
        w = self.c.window(-0.5, 0.5, -0.3, 0.2)
        x, y, a = w.x, w.y, self.a
        open_ = 0.06 + 0.94 * a["eyes_open"]
        w0 = 0.065 + 0.04 * a["eye_size"]
        h0 = w0 * (0.5 + 0.45 * a["eye_roundness"])
        ey = self.cy - 0.02
        dark = torch.tensor([0.12, 0.08, 0.06]).view(1, 3, 1, 1)
        iris_colour = torch.lerp(dark, self.hair * 0.5, 0.5)
        for side in (-1.0, 1.0):
            ex, fore = self.on_head(side * self.eye_phi)
            ew = w0 * fore
            white = ellipse(x, y, ex, ey, ew, h0 * open_)
            w.paint(white, torch.full((1, 3, 1, 1), 0.97), _L["eyes"])
            iris = torch.maximum(ellipse(x, y, ex + 0.25 * ew * torch.sin(self.t), ey, 0.55 * ew, 0.55 * w0), white)
            w.paint(iris, iris_colour, _L["eyes"])
            w.paint(ring(white, 0.011), dark)
            w.paint(arc(x, y, ex, ey, ew, 0.0, 0.012), dark, None, (0.35 - a["eyes_open"]).clamp(0, 0.1) * 10)
            bags = arc(x, y, ex, ey + h0 + 0.035, 0.7 * ew, -0.015, 0.006)
            w.paint(bags, self.skin * 0.6, None, (a["age"] - 0.45).clamp(0, 0.55) * 1.6)
            brow = arc(x, y, ex, ey - h0 - 0.07 + 0.03 * a["smile"].clamp(max=0), 1.1 * ew, -0.03, 0.017)
            w.paint(brow, self.hair * 0.7, _L["brows"])

    def nose(self) -> None:
        w = self.c.window(-0.35, 0.35, 0.05, 0.25)
        nx, _ = self.on_head(0.0, 1.12)
        w.paint(ellipse(w.x, w.y, nx, self.cy + 0.16, 0.038, 0.026), self.skin * 0.78, _L["nose"])

    def mouth(self) -> None:
        w = self.c.window(-0.4, 0.4, 0.15, 0.5)
        x, y, s = w.x, w.y, self.a["smile"]
        mx, _ = self.on_head(0.0, 0.97)
        half = (0.11 + 0.04 * s.clamp(min=0)) * torch.cos(self.t)
        my = self.cy + 0.33
        u2 = ((x - mx) / half) ** 2
        # An open smile fills the region between a flatter upper lip and the curved lower lip.
        upper = my - 0.045 * s + 0.02 * s * (1 - u2)
        lower = my - 0.04 * s + 0.09 * s * (1 - u2)
        inside = torch.maximum(torch.maximum(upper - y, y - lower), (x - mx).abs() - half)
        openness = ((s - 0.35) / 0.3).clamp(0, 1)
        w.paint(inside, torch.tensor([0.35, 0.06, 0.08]).view(1, 3, 1, 1), _L["mouth"], openness)
        w.paint(torch.maximum(inside, y - upper - 0.03), torch.full((1, 3, 1, 1), 0.95), _L["mouth"], openness)
        lips = torch.tensor([0.62, 0.22, 0.24]).view(1, 3, 1, 1)
        w.paint(arc(x, y, mx, my - 0.04 * s, half, 0.09 * s, 0.016), lips, _L["mouth"])

    def hair_front(self) -> None:
        w = self.c.window(-0.7, 0.7, -0.7, 0.5)
        x, y, a = w.x, w.y, self.a
        part, _ = self.on_head(0.0, 0.9)
        cap = ellipse(x, y, self.cx, self.cy - 0.03, self.rx + 0.05, self.ry + 0.06)
        u = (x - part) / self.rx
        line = self.cy - 0.34 + 0.2 * a["hair_fringe"] + 0.35 * u * u + 0.015 * torch.sin(40 * x)
        hair = torch.maximum(cap, y - line)
        w.paint(hair, self.hair, _L["hair"])
        shine = torch.maximum(ellipse(x, y, part - 0.15, self.cy - 0.45, 0.12, 0.04), hair)
        w.paint(shine, self.hair * 1.3 + 0.08, None, 0.35)

    def glasses(self) -> None:
        w = self.c.window(-0.55, 0.55, -0.25, 0.15)
        x, y, a = w.x, w.y, self.a
        on = a["glasses"]
        frame = torch.tensor([0.08, 0.08, 0.1]).view(1, 3, 1, 1)
        gy, r = self.cy - 0.02, 0.085 + 0.035 * a["eye_size"]
        inner = []
        for side in (-1.0, 1.0):
            gx, fore = self.on_head(side * self.eye_phi, 1.08)
            lens = ellipse(x, y, gx, gy, r * fore, r * 0.8)
            w.paint(lens, torch.tensor([0.75, 0.85, 1.0]).view(1, 3, 1, 1), None, 0.2 * on)
            w.paint(ring(lens, 0.014), frame, _L["glasses"], on)
            inner.append(gx - side * r * fore)
        w.paint(capsule(x, y, inner[0], gy - 0.02, inner[1], gy - 0.02, 0.012), frame, _L["glasses"], on)
