"""StyleGAN2 training as a LightningModule (trains the embedded toy generator, or one for any small domain).

Non-saturating logistic loss, lazy R1 on reals, style-mixing regularisation, optional lazy path-length
regularisation, and an exponential moving average of the generator (`g_ema`, the network one samples from), as in
StyleGAN2 (Karras et al. 2020, config-f training loop).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from ganinv.losses.adversarial import d_logistic_loss, g_nonsaturating_loss, r1_penalty
from ganinv.stylegan2 import Discriminator, Generator

from .base import IterationModule


class StyleGAN2GAN(IterationModule):
    """Generator, discriminator and EMA generator, trained on `batch["y"]` of any ganinv DataModule.

    One iteration is one discriminator and one generator update on a batch; `iteration` is saved in checkpoints,
    and training stops after `max_iterations`.
    """

    def __init__(self, size: int = 64, style_dim: int = 128, n_mlp: int = 4, channel_multiplier: int = 1,
                 channel_max: int = 64, lr: float = 0.002, r1: float = 0.1, d_reg_every: int = 16,
                 g_reg_every: int = 4, path_regularize: float = 0.0, path_batch_shrink: int = 2,
                 mixing: float = 0.9, ema_kimg: float = 10.0, max_iterations: int = 20_000):
        super().__init__(max_iterations)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = Generator(size, style_dim, n_mlp, channel_multiplier, channel_max=channel_max)
        self.discriminator = Discriminator(size, channel_multiplier, channel_max=channel_max)
        self.g_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.register_buffer("mean_path_length", torch.zeros(()))

    ddp_ignore = ("g_ema.",)  # the average of the (identical) generators, updated on every rank

    def configure_optimizers(self):
        hp = self.hparams
        # Lazy regularisation: rescale lr and betas so the regulariser's interval does not change the dynamics.
        g_ratio = hp.g_reg_every / (hp.g_reg_every + 1) if hp.path_regularize > 0 else 1.0
        d_ratio = hp.d_reg_every / (hp.d_reg_every + 1)
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=hp.lr * g_ratio, betas=(0.0, 0.99**g_ratio))
        d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr * d_ratio, betas=(0.0, 0.99**d_ratio))
        return g_opt, d_opt

    def latents(self, batch: int) -> list[torch.Tensor]:
        """One z, or two (style mixing at a random layer) with probability `mixing`."""
        n = 2 if torch.rand(()) < self.hparams.mixing else 1
        return list(torch.randn(n, batch, self.hparams.style_dim, device=self.device).unbind(0))

    def training_step(self, batch: dict, batch_idx: int) -> None:
        real, hp, it = batch["y"], self.hparams, self.iterations_done()
        # z, style mixing and noise come from the global RNG, which every rank seeds alike: key it to this rank
        # and iteration, so that ranks draw different samples (and a resumed run the same ones).
        torch.manual_seed(self.keyed("generator step").initial_seed())
        b = real.shape[0]
        g_opt, d_opt = self.optimizers()

        # Discriminator: logistic loss, plus the lazy R1 penalty on reals every `d_reg_every` iterations.
        self.generator.requires_grad_(False)
        self.discriminator.requires_grad_(True)
        with torch.no_grad():
            fake, _ = self.generator(self.latents(b))
        real_pred, fake_pred = self.discriminator(real), self.discriminator(fake)
        d_loss = d_logistic_loss(real_pred, fake_pred)
        logs = {"train/d_loss": d_loss.detach(), "train/real_score": real_pred.mean().detach(),
                "train/fake_score": fake_pred.mean().detach()}
        if hp.r1 > 0 and it % hp.d_reg_every == 0:
            real_r1 = real.detach().requires_grad_(True)
            r1 = r1_penalty(self.discriminator(real_r1), real_r1)
            d_loss = d_loss + hp.r1 / 2 * r1 * hp.d_reg_every
            logs["train/r1"] = r1.detach()
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        d_opt.step()

        # Generator: non-saturating loss with style mixing, plus the lazy path-length penalty.
        self.generator.requires_grad_(True)
        self.discriminator.requires_grad_(False)
        fake, _ = self.generator(self.latents(b))
        g_loss = g_nonsaturating_loss(self.discriminator(fake))
        logs["train/g_loss"] = g_loss.detach()
        if hp.path_regularize > 0 and it % hp.g_reg_every == 0:
            penalty, logs["train/path_length"] = self.path_length_penalty(max(b // hp.path_batch_shrink, 1))
            g_loss = g_loss + hp.path_regularize * hp.g_reg_every * penalty
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        g_opt.step()

        self.update_ema(0.5 ** (b / (hp.ema_kimg * 1000)))
        self.log_dict(logs, prog_bar=True)
        self.finish_iteration()

    def path_length_penalty(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Jacobian norm of the image w.r.t. w along random image directions, kept near its running mean."""
        fake, latents = self.generator(self.latents(batch), return_latents=True)
        noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
        (grad,) = torch.autograd.grad((fake * noise).sum(), latents, create_graph=True)
        lengths = grad.pow(2).sum(2).mean(1).sqrt()
        self.mean_path_length.lerp_(lengths.mean().detach(), 0.01)
        return (lengths - self.mean_path_length).pow(2).mean(), lengths.mean().detach()

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        # Only parameters: the buffers (noise, blur kernels) are fixed, and g_ema's copies were made at start.
        for p_ema, p in zip(self.g_ema.parameters(), self.generator.parameters(), strict=True):
            p_ema.lerp_(p, 1 - decay)

    def export(self, out_dir: Path, n_samples: int = 64) -> None:
        """`generator.pt` (the EMA generator with `latent_avg`) and `samples.png` (fixed z), written atomically."""
        from torchvision.utils import save_image

        from ganinv.checkpoints import atomic_write, save_generator

        g = self.export_generator()
        save_generator(g, out_dir / "generator.pt")
        z = torch.randn(n_samples, g.style_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            img, _ = g([z], randomize_noise=False)
        atomic_write(out_dir / "samples.png", lambda f: save_image(img.clamp(-1, 1) * 0.5 + 0.5, f, nrow=8,
                                                                    format="png"))

    @torch.no_grad()
    def export_generator(self, n_mean: int = 4096) -> Generator:
        """A CPU copy of the EMA generator with `latent_avg` set, ready for `save_generator`."""
        g = copy.deepcopy(self.g_ema).cpu().eval()
        g.latent_avg = g.mean_latent(n_mean)[0]
        return g
