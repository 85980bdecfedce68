"""In-Domain GAN inversion (Zhu et al. 2020): a domain-guided encoder trained through an image discriminator
(real images against reconstructions, generator frozen), then domain-regularised optimisation that keeps codes
where the encoder maps them: minimise pixel + λ_feat·perceptual + λ_enc·‖w − E(G(w))‖², from w = E(x)."""

from __future__ import annotations

import torch
from torch import nn

from ganinv.configs import yaml_defaults
from ganinv.data.transforms import resize
from ganinv.encoders import DomainGuidedEncoder
from ganinv.losses import d_logistic_loss, g_nonsaturating_loss
from ganinv.stylegan2 import Discriminator

from .base import InversionModule, match_size

DISCRIMINATOR, REFINE = (yaml_defaults("method", "idinvert")[k] for k in ("discriminator", "refine"))  # official


class IDInvertModule(InversionModule):
    """DomainGuidedEncoder + StyleGAN2 image discriminator (logistic loss, R1); `refine` is this run's setting of
    the regularised optimiser (`steps`, `lr`, `feature_weight` λ_feat, `encoder_weight` λ_enc), which
    `refine=idinvert` (ganinv.refine.DomainRegularisedOptimiser) uses by default."""

    TERMS = (*InversionModule.TERMS, "adversarial")

    def __init__(self, *args, discriminator: dict | None = None, refine: dict | None = None, **kwargs):
        self.refine = {**REFINE, **(refine or {})}
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        d = {**DISCRIMINATOR, **(discriminator or {})}
        self.discriminator_optimizer = d.pop("optimizer")
        # at the encoder's input size, which its targets have by default (256 px for a 1024-px generator, as pSp's
        # protocol); other targets are resized to it
        self.discriminator = Discriminator(self.input_size, **d)
        self.r1 = self.loss_objects.get("r1")

    def label(self) -> str:
        return "In-Domain encoder"

    def build_encoder(self, cfg: dict) -> nn.Module:
        return DomainGuidedEncoder(self.input_size, self.input_nc, self.n_latent, self.style_dim, **cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.offset(self.encoder(x))

    def configure_optimizers(self):
        return [self.make_optimizer(self.encoder.parameters()),
                self.make_optimizer(self.discriminator.parameters(), self.discriminator_optimizer)]

    def train_step(self, batch: dict) -> None:
        e_opt, d_opt = self.optimizers()
        x, y = batch["x"], batch["y"]
        codes = self.encode(x)
        y_hat = match_size(self.reconstruct(codes), y)
        real, fake = resize(y, self.input_size), resize(y_hat, self.input_size)
        # Discriminator: real images against reconstructions, then R1 on reals when due.
        self.discriminator.requires_grad_(True)
        d_loss = d_logistic_loss(self.discriminator(real), self.discriminator(fake.detach()))
        if self.r1 is not None and self.r1.due(self.iterations_done()):
            d_loss = d_loss + self.r1(self.discriminator, real)
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        d_opt.step()
        self.discriminator.requires_grad_(False)
        self.log("train/d_loss", d_loss.detach())
        # Encoder: pixel + perceptual + adversarial through the frozen generator.
        terms = {**self.image_losses(y_hat, y), "adversarial": g_nonsaturating_loss(self.discriminator(fake)),
                 **self.alignment_terms(codes)}
        loss = self.total(terms)
        e_opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        e_opt.step()
