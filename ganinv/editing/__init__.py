"""Latent editing: directions found by GANSpace, SeFa and InterFaceGAN, saved with their metadata, and applied
to codes."""

from .apply import edit, interpolate
from .directions import Directions, ganspace, interfacegan, load_directions, sefa, style_layers

__all__ = ["Directions", "edit", "ganspace", "interfacegan", "interpolate", "load_directions", "sefa",
           "style_layers"]
