"""Encoders of pSp, e4e, ReStyle and In-Domain inversion as plain nn.Modules with the official key names.

Official checkpoints are read by `ganinv.checkpoints.load_official` (the layer above this one)."""

from .discriminators import LatentCodesDiscriminator
from .e4e import INFERENCE_STAGE, Encoder4Editing
from .idinvert import DomainGuidedEncoder
from .ir_se import BottleneckIR, SEModule, make_body, make_input_layer
from .psp import (
    BackboneEncoderUsingLastLayerIntoW,
    BackboneEncoderUsingLastLayerIntoWPlus,
    GradualStyleBlock,
    GradualStyleEncoder,
)
from .restyle import (
    BackboneEncoder,
    ProgressiveBackboneEncoder,
    ResNetBackboneEncoder,
    ResNetProgressiveBackboneEncoder,
)

__all__ = [
    "BackboneEncoder", "BackboneEncoderUsingLastLayerIntoW", "BackboneEncoderUsingLastLayerIntoWPlus",
    "BottleneckIR", "DomainGuidedEncoder", "Encoder4Editing", "GradualStyleBlock", "GradualStyleEncoder",
    "INFERENCE_STAGE", "LatentCodesDiscriminator", "ProgressiveBackboneEncoder",
    "ResNetBackboneEncoder", "ResNetProgressiveBackboneEncoder", "SEModule", "make_body",
    "make_input_layer",
]

