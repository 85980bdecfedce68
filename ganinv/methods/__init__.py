"""The inversion methods as LightningModules on one base, and the inference API used by everything after them.

Public: `InversionModule`, `PSPModule`, `E4EModule`, `ReStyleModule`, `IDInvertModule`, `HyperStyleModule`,
`HFGIModule`, `LSAPModule`, `AverageCode`,
`load_method(path, generator=None)`, `export_official(module, path)`, `method_from_config`, `build_loss_nets`;
`StyleGAN2GAN` lives in `ganinv.methods.gan`.
"""

from .average import AverageCode
from .base import ConfigError, InversionModule, TrainingDiverged
from .e4e import E4EModule
from .export import export_official
from .hfgi import HFGIModule
from .hyperstyle import HyperStyleModule
from .idinvert import IDInvertModule
from .loading import METHODS, build_loss_nets, load_method, method_from_config
from .lsap import LSAPModule
from .psp import PSPModule
from .restyle import ReStyleModule

__all__ = ["METHODS", "AverageCode", "ConfigError", "E4EModule", "HFGIModule", "HyperStyleModule", "IDInvertModule",
           "InversionModule", "LSAPModule", "PSPModule", "ReStyleModule", "TrainingDiverged", "build_loss_nets",
           "export_official", "load_method", "method_from_config"]
