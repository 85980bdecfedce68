"""The inversion methods as LightningModules on one base, and the inference API used by everything after them.

Public: `InversionModule`, `PSPModule`, `E4EModule`, `ReStyleModule`, `IDInvertModule`, `HyperStyleModule`,
`HFGIModule`, `LSAPModule`, `FeatureStyleModule`, `StyleResModule`, `SFEModule`, `AverageCode`,
`load_method(path, generator=None)`, `export_official(module, path)`, `method_from_config`, `build_loss_nets`;
`StyleGAN2GAN` lives in `ganinv.methods.gan`.
"""

from .average import AverageCode
from .base import ConfigError, InversionModule, TrainingDiverged
from .e4e import E4EModule
from .export import export_official
from .feature_style import FeatureStyleModule
from .hfgi import HFGIModule
from .hyperstyle import HyperStyleModule
from .idinvert import IDInvertModule
from .loading import METHODS, build_loss_nets, load_method, method_from_config
from .lsap import LSAPModule
from .psp import PSPModule
from .restyle import ReStyleModule
from .sfe import SFEModule
from .styleres import StyleResModule

__all__ = ["METHODS", "AverageCode", "ConfigError", "E4EModule", "FeatureStyleModule", "HFGIModule",
           "HyperStyleModule", "IDInvertModule", "InversionModule", "LSAPModule", "PSPModule", "ReStyleModule",
           "SFEModule", "StyleResModule", "TrainingDiverged", "build_loss_nets", "export_official", "load_method",
           "method_from_config"]
