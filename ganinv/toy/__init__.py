"""The embedded toy domain: procedural faces with known attributes, and small networks trained on them.

`render(n, resolution, seed)` draws faces (see `attributes.ATTRIBUTES` for the attribute layout); the
`load_*_net()` loaders return the committed attribute, identity and perceptual nets, frozen, and
`load_generator()` the committed toy StyleGAN2, `ToyFaceParser` each pixel's part.
"""

from .attributes import ATTRIBUTES, EDITABLE, IDENTITY, NAMES, NUM_ATTRIBUTES, sample_attributes
from .generator import load_generator
from .nets import (
    AttributeNet,
    AttributePredictor,
    IdentityNet,
    PerceptualNet,
    load_attribute_net,
    load_identity_net,
    load_perceptual_net,
    training_record,
)
from .parsing import ToyFaceParser
from .render import LABELS, NUM_LABELS, ToyBatch, render, render_attributes, sketch

__all__ = ["ATTRIBUTES", "EDITABLE", "IDENTITY", "LABELS", "NAMES", "NUM_ATTRIBUTES", "NUM_LABELS", "AttributeNet",
           "AttributePredictor", "IdentityNet", "PerceptualNet", "ToyBatch", "ToyFaceParser", "load_attribute_net",
           "load_generator", "load_identity_net", "load_perceptual_net", "render", "render_attributes",
           "sample_attributes", "sketch", "training_record"]
