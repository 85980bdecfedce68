"""Feature-Style encoder (Yao et al. 2022): one encoder predicts the W+ codes and the generator's feature tensor at
1/16 of the input (16x16 of a 1024-px generator from 256-px inputs), which replaces the generator's own features
leaving that block; the prediction is blended in over a warm-up. An edit moves the codes and the feature tensor
follows by the generator's own change: F + G_r(w_edit) - G_r(w)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.encoders.feature_style import LAYOUTS, FeatureStyleBackbone
from ganinv.inversion import Inversion

from .base import ConfigError, InversionModule
from .feature_space import blend_scale, blended, own_features


class FeatureStyleModule(InversionModule):
    """`encoder`: the backbone's `widths` and `units` (official IResNet-50); `feature_warmup`: iterations over
    which the predicted features are blended in (official 10 000); `lr_step`: the iteration at which the learning
    rate falls tenfold (official: after 10 of 12 epochs of 10 000 iterations; None: never); loss terms l2,
    perceptual, id and `feat_rec` (the predicted features' MSE to the generator's own, official 0.01)."""

    TERMS = (*InversionModule.TERMS, "feat_rec")

    def __init__(self, *args, feature_warmup: int = 10_000, lr_step: int | None = 100_000, **kwargs):
        self.feature_warmup, self.lr_step = int(feature_warmup), lr_step
        super().__init__(*args, **kwargs)

    @property
    def resolution(self) -> int:
        return self.input_size // LAYOUTS["feature_style"]

    def label(self) -> str:
        return "Feature-Style"

    def build_encoder(self, cfg: dict) -> nn.Module:
        if self.resolution not in self.generator.channels:
            raise ConfigError(f"Feature-Style predicts the generator's {self.resolution}-px features (input_size / "
                              f"16), which this {self.generator.size}-px generator does not have: choose input_size "
                              f"64 .. {self.generator.size * 16}")
        return FeatureStyleBackbone(self.n_latent, self.style_dim, self.generator.channels[self.resolution],
                                    "feature_style", input_nc=self.input_nc, **cfg)

    def blend(self) -> float:
        return blend_scale(self.iterations_done(), self.feature_warmup)

    def predicted(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes, feat = self.encoder(x)
        return self.offset(codes), feat

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.predicted(x)[0]

    def inversion(self, x: torch.Tensor) -> Inversion:
        """The codes, and the features as what they add to the generator's own for those codes (scaled by the
        blend): rendered with other codes (an edit), they add the same, so the features follow the edit."""
        codes, feat = self.predicted(x)
        own = own_features(self, codes, self.resolution)
        add = self.blend() * (feat.to(own) - own)
        return Inversion(codes, features={self.resolution: torch.cat([torch.ones_like(add[:, :1]), add], 1)})

    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        if not self.lr_step:
            return optimizer
        step = torch.optim.lr_scheduler.StepLR(optimizer, int(self.lr_step), gamma=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": step, "interval": "step"}}

    def train_step(self, batch: dict) -> torch.Tensor:
        codes, feat = self.predicted(batch["x"])
        s = self.blend()
        own = own_features(self, codes, self.resolution)
        image = self.reconstruct(Inversion(codes, features={self.resolution: blended(feat.to(own), s)}))  # official
        terms = {**self.image_losses(image, batch["y"]), "feat_rec": F.mse_loss(feat.to(own), own.detach())}
        return self.total(terms)
