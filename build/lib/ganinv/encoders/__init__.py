"""Encoders of pSp, e4e, ReStyle and In-Domain inversion as plain nn.Modules with the official key names."""

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
    ReStyleStep,
    restyle_iterations,
)

__all__ = [
    "BackboneEncoder", "BackboneEncoderUsingLastLayerIntoW", "BackboneEncoderUsingLastLayerIntoWPlus",
    "BottleneckIR", "DomainGuidedEncoder", "Encoder4Editing", "GradualStyleBlock", "GradualStyleEncoder",
    "INFERENCE_STAGE", "LatentCodesDiscriminator", "OfficialModel", "ProgressiveBackboneEncoder", "ReStyleStep",
    "ResNetBackboneEncoder", "ResNetProgressiveBackboneEncoder", "SEModule", "load_official", "make_body",
    "make_input_layer", "restyle_iterations",
]


def __getattr__(name: str):
    # The loader lives with the other checkpoint formats and imports this package: resolve it lazily.
    if name in ("load_official", "OfficialModel"):
        from ganinv.checkpoints import official

        return getattr(official, name)
    raise AttributeError(name)
