"""Losses of pSp, e4e, ReStyle and In-Domain inversion; networks are passed in or read from a path, never
downloaded. Weights at the official defaults live in `conf/loss/*.yaml`."""

from .adversarial import LazyR1, d_logistic_loss, g_nonsaturating_loss, r1_penalty
from .identity import (
    ArcFaceBackbone,
    IdentitySimilarity,
    arcface_identity,
    arcface_preprocess,
    moco_identity,
    module_identity,
)
from .latent import NormalizedStyleSpace, code_loss, delta_regularization, style_modulations, w_norm
from .perceptual import (
    LPIPS,
    FeatureDistance,
    FrozenNet,
    InDomainPerceptual,
    MeanDistance,
    torchvision_weights,
    vgg16_conv4_3,
)

__all__ = [
    "LPIPS", "ArcFaceBackbone", "FeatureDistance", "FrozenNet", "IdentitySimilarity", "InDomainPerceptual", "LazyR1",
    "MeanDistance", "NormalizedStyleSpace",
    "arcface_identity", "arcface_preprocess", "code_loss", "d_logistic_loss", "delta_regularization",
    "g_nonsaturating_loss", "module_identity", "moco_identity", "r1_penalty", "style_modulations",
    "torchvision_weights", "vgg16_conv4_3", "w_norm",
]
