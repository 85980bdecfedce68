"""StyleGAN2 training as a LightningModule (used to train the embedded toy generator, or any small domain).

Non-saturating logistic loss, lazy R1 on reals, style-mixing regularisation, optional lazy path-length
regularisation, and an exponential moving average of the generator (`g_ema`, the network one samples from).
"""

from __future__ import annotations

import copy
import math
import random

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ganinv.stylegan2 import Discriminator, Generator


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


class StyleGAN2GAN(pl.LightningModule):
    """Two-player StyleGAN2 training with manual optimisation (one D step, then one G step per batch)."""

    def __init__(self, size: int = 32, style_dim: int = 64, n_mlp: int = 4, channel_max: int = 64,
                 channel_multiplier: int = 2, lr: float = 0.002, r1: float = 0.1, d_reg_every: int = 16,
                 path_regularize: float = 0.0, path_batch_shrink: int = 2, g_reg_every: int = 4,
                 mixing: float = 0.9, ema_kimg: float = 10.0):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = Generator(size, style_dim, n_mlp, channel_multiplier, channel_max=channel_max)
        self.discriminator = Discriminator(size, channel_multiplier, channel_max=channel_max)
        self.g_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.register_buffer("mean_path_length", torch.zeros(()))

    def configure_optimizers(self):
        hp = self.hparams
        # Lazy regularisation: rescale lr and betas so the regulariser's interval does not change the dynamics.
        g_ratio = hp.g_reg_every / (hp.g_reg_every + 1) if hp.path_regularize > 0 else 1.0
        d_ratio = hp.d_reg_every / (hp.d_reg_every + 1)
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=hp.lr * g_ratio, betas=(0.0, 0.99**g_ratio))
        d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr * d_ratio, betas=(0.0, 0.99**d_ratio))
        return g_opt, d_opt

    def _latents(self, batch: int) -> list[torch.Tensor]:
        n = 2 if random.random() < self.hparams.mixing else 1
        return [torch.randn(batch, self.hparams.style_dim, device=self.device) for _ in range(n)]

    def training_step(self, batch: dict, batch_idx: int) -> None:
        real = batch["y"]
        g_opt, d_opt = self.optimizers()
        step, hp = self.global_step // 2, self.hparams  # two optimizer steps per batch

        # Discriminator: logistic loss, then the lazy R1 penalty on reals.
        self.generator.requires_grad_(False)
        self.discriminator.requires_grad_(True)
        with torch.no_grad():
            fake, _ = self.generator(self._latents(real.shape[0]))
        d_loss = d_logistic_loss(self.discriminator(real), self.discriminator(fake))
        if step % hp.d_reg_every == 0 and hp.r1 > 0:
            real_r1 = real.detach().requires_grad_(True)
            r1 = r1_penalty(self.discriminator(real_r1), real_r1)
            d_loss = d_loss + hp.r1 / 2 * r1 * hp.d_reg_every
            self.log("train/r1", r1)
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        d_opt.step()

        # Generator: non-saturating loss with style mixing, then the lazy path-length penalty.
        self.generator.requires_grad_(True)
        self.discriminator.requires_grad_(False)
        fake, _ = self.generator(self._latents(real.shape[0]))
        g_loss = g_nonsaturating_loss(self.discriminator(fake))
        if hp.path_regularize > 0 and step % hp.g_reg_every == 0:
            g_loss = g_loss + hp.path_regularize * hp.g_reg_every * self._path_length(real.shape[0])
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        g_opt.step()
        self._update_ema(real.shape[0])
        self.log_dict({"train/d_loss": d_loss.detach(), "train/g_loss": g_loss.detach()}, prog_bar=True)

    def _path_length(self, batch: int) -> torch.Tensor:
        """Jacobian norm of the image w.r.t. w along random image-space directions, kept near its running mean."""
        n = max(batch // self.hparams.path_batch_shrink, 1)
        fake, latents = self.generator(self._latents(n), return_latents=True)
        noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
        (grad,) = torch.autograd.grad((fake * noise).sum(), latents, create_graph=True)
        lengths = grad.pow(2).sum(2).mean(1).sqrt()
        mean = self.mean_path_length + 0.01 * (lengths.mean().detach() - self.mean_path_length)
        penalty = (lengths - mean).pow(2).mean()
        self.mean_path_length.copy_(mean)
        self.log("train/path_length", lengths.mean().detach())
        return penalty

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        decay = 0.5 ** (batch / (self.hparams.ema_kimg * 1000))
        for p_ema, p in zip(self.g_ema.parameters(), self.generator.parameters()):
            p_ema.lerp_(p, 1 - decay)
        live = dict(self.generator.named_buffers())
        for name, b_ema in self.g_ema.named_buffers():
            if name in live:  # g_ema also holds latent_avg once exported
                b_ema.copy_(live[name])

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, truncation: float = 1.0) -> torch.Tensor:
        z = torch.randn(n, self.hparams.style_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        latent = self.g_ema.mean_latent(4096) if truncation < 1 else None
        return self.g_ema([z], truncation=truncation, truncation_latent=latent, randomize_noise=False)[0]

