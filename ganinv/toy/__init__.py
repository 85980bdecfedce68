"""The embedded toy domain: procedural faces with known attributes, and small networks trained on them."""

from .attributes import ATTRIBUTES, EDITABLE, IDENTITY, NAMES, NUM_ATTRIBUTES, sample_attributes
from .render import LABELS, NUM_LABELS, ToyBatch, render, render_attributes, sketch

__all__ = ["ATTRIBUTES", "EDITABLE", "IDENTITY", "LABELS", "NAMES", "NUM_ATTRIBUTES", "NUM_LABELS", "ToyBatch",
           "render", "render_attributes", "sample_attributes", "sketch"]
