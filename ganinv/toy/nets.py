"""Small networks for the toy domain, playing the roles that pretrained networks play for real faces.

- `AttributeNet`: predicts the attribute vector (InterFaceGAN boundaries, edit-success metrics).
- `IdentityNet`: a unit-norm embedding, similar for the same identity factors under any editable factors
  (ArcFace's role in the identity loss and the identity-similarity metric).
- `PerceptualNet`: channel-normalised multi-layer features and a distance between images (LPIPS's role).

All take images in [-1, 1] of any size (resized to 64 px) and are loaded frozen by `load_*_net()`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attributes import ATTRIBUTES, INDEX, NUM_ATTRIBUTES, normalise
from .render import NUM_LABELS

INPUT_SIZE = 64
WIDTHS = (16, 32, 64, 128, 128)
ASSETS = Path(str(resources.files("ganinv.toy") / "assets"))


def _stage(cin: int, cout: int) -> nn.Sequential:
    """Halve the resolution, then one more conv; GroupNorm behaves the same in train and eval."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.GroupNorm(8, cout), nn.LeakyReLU(0.2),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(8, cout), nn.LeakyReLU(0.2))


class Backbone(nn.Module):
    """A full-resolution conv, then four stages at 32, 16, 8 and 4 px; returns every stage's features."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1), nn.LeakyReLU(0.2))
        self.stages = nn.ModuleList([stem, *(_stage(i, o) for i, o in zip(widths[:-1], widths[1:]))])

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > INPUT_SIZE)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class AttributeNet(nn.Module):
    """Attribute vector from an image, in `ATTRIBUTES` units; `logits` gives the [0, 1]-scaled raw outputs."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.backbone = Backbone(widths)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * 16, 256), nn.LeakyReLU(0.2),
                                  nn.Linear(256, NUM_ATTRIBUTES))
        self.register_buffer("low", torch.tensor([a.low for a in ATTRIBUTES]), persistent=False)
        self.register_buffer("high", torch.tensor([a.high for a in ATTRIBUTES]), persistent=False)

    def logits(self, x: Tensor) -> Tensor:
        """Raw outputs [B, A]: each attribute scaled to [0, 1] (before a sigmoid); glasses as a logit."""
        return self.head(self.backbone(x)[-1])

    def forward(self, x: Tensor) -> Tensor:
        p = torch.sigmoid(self.logits(x))
        return self.low + p * (self.high - self.low)

    def glasses_probability(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(x)[:, INDEX["glasses"]])


class IdentityNet(nn.Module):
    """Unit-norm identity embedding [B, dim]; cosine similarity compares identities."""

    def __init__(self, dim: int = 64, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        self.backbone = Backbone(widths)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * 16, 256), nn.LeakyReLU(0.2),
                                  nn.Linear(256, dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.head(self.backbone(x)[-1]), dim=1)

    def similarity(self, x: Tensor, y: Tensor) -> Tensor:
        """Cosine similarity of the identities of two image batches, [B]."""
        return (self(x) * self(y)).sum(1)


class PerceptualNet(nn.Module):
    """LPIPS-style distance on a backbone trained to segment faces and read their attributes.

    d(x, y) = mean over layers l of mean over pixels of || f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)| ||^2,
    with channel-wise unit normalisation as in LPIPS (uniform layer weights).
    """

    def __init__(self, widths: tuple[int, ...] = WIDTHS, layers: tuple[int, ...] = (1, 2, 3, 4)):
        super().__init__()
        self.backbone = Backbone(widths)
        self.layers = layers
        # Training heads only: dense labels keep every layer's features spatially meaningful.
        self.segment = nn.Conv2d(sum(widths[i] for i in layers), NUM_LABELS, 1)
        self.attributes = nn.Linear(widths[-1] * 16, NUM_ATTRIBUTES)

    def features(self, x: Tensor) -> list[Tensor]:
        """Channel-normalised features of the compared layers."""
        feats = self.backbone(x)
        return [F.normalize(feats[i], dim=1, eps=1e-8) for i in self.layers]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Perceptual distance [B] between two image batches in [-1, 1]."""
        fx, fy = self.features(x), self.features(y)
        return torch.stack([(a - b).pow(2).sum(1).mean((1, 2)) for a, b in zip(fx, fy, strict=True)]).mean(0)

    distance = forward

    def maps(self, x: Tensor, y: Tensor) -> list[Tensor]:
        """Each compared layer's distance map [B, 1, h, w] (`forward` is the mean over layers of their means)."""
        return [(a - b).pow(2).sum(1, keepdim=True) / len(self.layers)
                for a, b in zip(self.features(x), self.features(y), strict=True)]

    def training_outputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Segmentation logits [B, NUM_LABELS, 32, 32] (compare with labels at 32 px) and attribute logits [B, A]."""
        feats = self.backbone(x)
        size = feats[1].shape[-1]
        dense = torch.cat([F.interpolate(feats[i], size=size, mode="bilinear", align_corners=False)
                           for i in self.layers], 1)
        return self.segment(dense), self.attributes(feats[-1].flatten(1))


NETS = {"attribute": AttributeNet, "identity": IdentityNet, "perceptual": PerceptualNet}


def load_net(name: str, path: str | Path | None = None) -> nn.Module:
    """A committed toy net (or one at `path`), frozen and in eval mode."""
    from ganinv.checkpoints.safe_io import CheckpointError, load_torch_file

    path = Path(path) if path is not None else ASSETS / f"{name}_net.pt"
    state = load_torch_file(path)
    net = NETS[name](**state.get("config", {}))
    try:
        net.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(path, f"does not hold a {name} net ({str(e).splitlines()[0][:160]}).",
                              f"Retrain it with `python -m ganinv.toy.train_nets --net {name}`.") from None
    return net.eval().requires_grad_(False)


def load_attribute_net(path: str | Path | None = None) -> AttributeNet:
    return load_net("attribute", path)


def load_identity_net(path: str | Path | None = None) -> IdentityNet:
    return load_net("identity", path)


def load_perceptual_net(path: str | Path | None = None) -> PerceptualNet:
    return load_net("perceptual", path)


def training_record() -> dict:
    """How each committed toy asset was trained and what it scored (assets/record.json)."""
    path = ASSETS / "record.json"
    return json.loads(path.read_text()) if path.exists() else {}


class AttributePredictor(nn.Module):
    """Toy attributes as scores per image: one name gives [B], a list [B, K]; in the attributes' units, or on
    [0, 1] with `normalised=True` (every attribute on one scale, for edit quality). For InterFaceGAN boundaries and
    the editability metrics; images of any size are resized to the net's 64 px."""

    def __init__(self, attribute: str | Sequence[str], net: AttributeNet | None = None, normalised: bool = False):
        super().__init__()
        names = [attribute] if isinstance(attribute, str) else list(attribute)
        unknown = [a for a in names if a not in INDEX]
        if unknown:
            raise ValueError(f"unknown toy attribute {unknown[0]!r}; choose one of {', '.join(INDEX)}")
        self.single, self.names, self.normalised = isinstance(attribute, str), names, normalised
        self.index, self.net = [INDEX[a] for a in names], net or load_attribute_net()

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] != 64:
            images = torch.nn.functional.interpolate(images, size=(64, 64), mode="bilinear", antialias=True,
                                                     align_corners=False)
        out = self.net(images)
        out = (normalise(out) if self.normalised else out)[:, self.index]
        return out[:, 0] if self.single else out
