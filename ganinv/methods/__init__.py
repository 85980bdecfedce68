"""The inversion methods as LightningModules on one base, and the inference API used by everything after them.

Public: `InversionModule`, `PSPModule`, `E4EModule`, `ReStyleModule`, `IDInvertModule`, `OptimizationModule`,
`load_method(path, generator=None)`, `export_official(module, path)`, `method_from_config`, `build_loss_nets`;
`StyleGAN2GAN` lives in `ganinv.methods.gan`.
"""

from .base import ConfigError, InversionModule, TrainingDiverged
from .e4e import E4EModule
from .export import export_official
from .idinvert import IDInvertModule
from .loading import METHODS, build_loss_nets, load_method, method_from_config
from .optimization import OptimizationModule
from .psp import PSPModule
from .restyle import ReStyleModule

__all__ = ["METHODS", "ConfigError", "E4EModule", "IDInvertModule", "InversionModule", "OptimizationModule",
           "PSPModule", "ReStyleModule", "TrainingDiverged", "build_loss_nets", "export_official", "load_method",
           "method_from_config"]
