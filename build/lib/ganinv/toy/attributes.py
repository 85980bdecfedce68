"""The toy face attribute vector: names, ranges, which factors are identity and which are editable."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: str  # "identity" (who the face is) or "editable" (what an edit may change)
    low: float
    high: float
    binary: bool = False
    doc: str = ""


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("face_width", "identity", 0, 1, doc="narrow to wide head"),
    Attribute("jaw", "identity", 0, 1, doc="round to pointed chin"),
    Attribute("skin_tone", "identity", 0, 1, doc="light to dark skin"),
    Attribute("eye_size", "identity", 0, 1, doc="small to large eyes"),
    Attribute("eye_roundness", "identity", 0, 1, doc="almond to round eyes"),
    Attribute("eye_spacing", "identity", 0, 1, doc="close-set to wide-set eyes"),
    Attribute("hair_colour", "identity", 0, 1, doc="black, brown, auburn, blonde"),
    Attribute("hair_length", "identity", 0, 1, doc="short crop to shoulder length"),
    Attribute("hair_fringe", "identity", 0, 1, doc="high hairline to low fringe"),
    Attribute("smile", "editable", -1, 1, doc="frown to open smile"),
    Attribute("yaw", "editable", -1, 1, doc="head turned to the viewer's left (-1) or right (+1); 0 is frontal"),
    Attribute("eyes_open", "editable", 0, 1, doc="closed to wide open"),
    Attribute("glasses", "editable", 0, 1, binary=True, doc="no glasses (0) or glasses (1)"),
    Attribute("age", "editable", 0, 1, doc="young to old: grey hair, eye bags, paler skin"),
    Attribute("background", "editable", 0, 1, doc="background hue"),
)
NAMES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES)
INDEX: dict[str, int] = {n: i for i, n in enumerate(NAMES)}
IDENTITY = tuple(i for i, a in enumerate(ATTRIBUTES) if a.kind == "identity")
EDITABLE = tuple(i for i, a in enumerate(ATTRIBUTES) if a.kind == "editable")
NUM_ATTRIBUTES = len(ATTRIBUTES)
GLASSES_PROBABILITY = 0.35


def sample_attributes(n: int, generator: torch.Generator | int = 0) -> torch.Tensor:
    """`n` attribute vectors [n, NUM_ATTRIBUTES], uniform in each range (glasses Bernoulli)."""
    g = torch.Generator().manual_seed(generator) if isinstance(generator, int) else generator
    u = torch.rand(n, NUM_ATTRIBUTES, generator=g)
    low = torch.tensor([a.low for a in ATTRIBUTES])
    high = torch.tensor([a.high for a in ATTRIBUTES])
    attrs = low + u * (high - low)
    attrs[:, INDEX["glasses"]] = (u[:, INDEX["glasses"]] < GLASSES_PROBABILITY).float()
    return attrs


def normalise(attrs: torch.Tensor) -> torch.Tensor:
    """Map every attribute to [0, 1] (the scale the attribute predictor is trained on)."""
    low = attrs.new_tensor([a.low for a in ATTRIBUTES])
    high = attrs.new_tensor([a.high for a in ATTRIBUTES])
    return (attrs - low) / (high - low)


def resample_editable(attrs: torch.Tensor, generator: torch.Generator | int = 0) -> torch.Tensor:
    """Same identities, fresh editable factors (pairs for identity-embedding training and tests)."""
    fresh = sample_attributes(attrs.shape[0], generator).to(attrs)
    out = attrs.clone()
    out[:, list(EDITABLE)] = fresh[:, list(EDITABLE)]
    return out
