"""Refiners: an `Inversion` in, a better one out (docs/inversion.md), chosen by the `refine` config group
(`conf/refine/`: optim_w, optim_wplus, idinvert, pti, dhr, sam) and chainable after any method.

Public: `Refiner`, `CodeOptimiser`, `DomainRegularisedOptimiser`, `DomainSpecificHybridRefinement`,
`PivotalTuning`, `SpatiallyAdaptiveMultilayer`, `InvertibilityPredictor`, `build_refiner`, `optimize_codes`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Refiner
from .dhr import DomainSpecificHybridRefinement
from .idinvert import DomainRegularisedOptimiser
from .invertibility import InvertibilityPredictor
from .optimise import CodeOptimiser, optimize_codes
from .pti import PivotalTuning
from .sam import SpatiallyAdaptiveMultilayer


def build_refiner(node: Mapping[str, Any] | None, module, perceptual_net=None, show: bool = False) -> Refiner | None:
    """The refiner a `conf/refine` node asks for (None for none), refining `module`'s inversions; `perceptual_net`:
    the image distance of the `loss` group. In-Domain's `checkpoint` option names the run whose encoder
    regularises (default: the refined method itself)."""
    from hydra.utils import get_class, instantiate
    from omegaconf import OmegaConf

    from ganinv.methods import ConfigError, load_method

    if node is None:
        return None
    options = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    extra = {}
    if get_class(options["_target_"]) is DomainRegularisedOptimiser:
        path = options.pop("checkpoint", None)
        extra["regulariser"] = load_method(path) if path else module
    refiner = instantiate(options, _partial_=True, _recursive_=False, _convert_="all")
    try:
        built = refiner(module, perceptual_net, show, **extra)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if isinstance(built, SpatiallyAdaptiveMultilayer) and built.predictor is None:
        raise ConfigError("refine=sam needs refine.predictor=<file>: train one with `ganinv-train-invertibility "
                          "checkpoint=<the method's run> output=<file>` (docs/inversion.md#sam)")
    return built


__all__ = ["CodeOptimiser", "DomainRegularisedOptimiser", "DomainSpecificHybridRefinement", "InvertibilityPredictor",
           "PivotalTuning", "Refiner", "SpatiallyAdaptiveMultilayer", "build_refiner", "optimize_codes"]
