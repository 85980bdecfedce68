"""e4e (Tov et al. 2021, "Designing an Encoder for StyleGAN Image Manipulation"): one base code w plus per-layer
offsets switched on progressively, delta regularisation, and a latent discriminator (with lazy R1 and a pool of
past codes) that keeps the codes in W, so that they edit well."""

from __future__ import annotations

import torch
from torch import nn

from ganinv.configs import yaml_defaults
from ganinv.encoders import Encoder4Editing, LatentCodesDiscriminator
from ganinv.losses import d_logistic_loss, delta_regularization, g_nonsaturating_loss

from .base import InversionModule

DISCRIMINATOR = yaml_defaults("method", "e4e")["discriminator"]  # the official pool and optimiser


def progressive_stage(iteration: int, start: int | None, every: int, n_latent: int) -> int:
    """The official schedule: W only (stage 0) until `start`, then one more offset every `every` iterations."""
    if start is None:
        return n_latent - 1
    return 0 if iteration < start else min(1 + (iteration - start) // every, n_latent - 1)


class LatentPool(nn.Module):
    """e4e's pool of past codes (as CycleGAN's image pool): once full, each query returns, with probability 1/2,
    a stored code in place of the new one, which takes its slot. Buffers, so checkpoints keep the pool."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.size = int(size)
        self.register_buffer("codes", torch.zeros(self.size, dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, w: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        if self.size == 0:
            return w
        out = []
        for code in w.detach():
            n = int(self.count)
            if n < self.size:
                self.codes[n], self.count = code, self.count + 1
                out.append(code)
            elif float(torch.rand((), generator=gen)) > 0.5:
                k = int(torch.randint(self.size, (), generator=gen))
                out.append(self.codes[k].clone())
                self.codes[k] = code
            else:
                out.append(code)
        return torch.stack(out)


class LatentRegularisers(nn.Module):
    """What keeps e4e's codes editable, shared with ReStyle-e4e: the latent discriminator D(w) trained on mapped
    w = f(z) against the encoded codes of the active layers, its lazy R1, and the pools."""

    def __init__(self, style_dim: int, r1, pool_size: int):
        super().__init__()
        self.discriminator = LatentCodesDiscriminator(style_dim, 4)
        self.r1 = r1
        self.real_pool, self.fake_pool = LatentPool(pool_size, style_dim), LatentPool(pool_size, style_dim)

    def discriminator_step(self, module: InversionModule, real_w: torch.Tensor, fake_w: torch.Tensor,
                           opt, iteration: int) -> dict:
        """One D update on pooled real vs fake codes, then the lazy R1 update when it is due."""
        d = self.discriminator.requires_grad_(True)
        real_w = self.real_pool(real_w, module.keyed("real pool"))
        fake_w = self.fake_pool(fake_w, module.keyed("fake pool"))
        loss = d_logistic_loss(d(real_w), d(fake_w))
        opt.zero_grad(set_to_none=True)
        module.manual_backward(loss)
        opt.step()
        logs = {"train/d_loss": loss.detach()}
        if self.r1 is not None and self.r1.due(iteration):
            r1 = self.r1(d, real_w)
            opt.zero_grad(set_to_none=True)
            module.manual_backward(r1)
            opt.step()
            logs["train/d_r1"] = r1.detach()
        d.requires_grad_(False)
        return logs

    def encoder_loss(self, codes: torch.Tensor, dims: list[int]) -> torch.Tensor:
        """Non-saturating loss of the active layers' codes, averaged over those layers."""
        return sum(g_nonsaturating_loss(self.discriminator(codes[:, i])) for i in dims) / len(dims)


class E4EModule(InversionModule):
    """Encoder4Editing trained progressively (`progressive_start`, `progressive_step_every`; `None` trains every
    offset from the start), with delta regularisation and the latent discriminator (manual optimisation)."""

    TERMS = (*InversionModule.TERMS, "delta_norm", "w_discriminator")
    ddp_ignore = (*InversionModule.ddp_ignore, "regularisers.real_pool.", "regularisers.fake_pool.")  # per rank

    def __init__(self, *args, progressive_start: int | None = 20_000, progressive_step_every: int = 2_000,
                 discriminator: dict | None = None, **kwargs):
        self.progressive_start, self.progressive_step_every = progressive_start, int(progressive_step_every)
        self.discriminator_cfg = {**DISCRIMINATOR, **(discriminator or {})}  # pool_size, optimizer (a partial)
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        loss = kwargs.get("loss") or {}
        self.regularisers = LatentRegularisers(self.style_dim, self.loss_objects.get("r1"),
                                               int(self.discriminator_cfg["pool_size"])) \
            if self.weights.get("w_discriminator", 0) > 0 else None
        self.delta_norm_p = float(loss.get("delta_norm_p", 2))

    @property
    def stage(self) -> int:
        """Offsets 1 .. stage are active; derived from the iteration, so a resumed run is at the right stage.
        Not progressive: the encoder's own stage (every offset, unless an exported file recorded another)."""
        if self.progressive_start is None:
            own = getattr(self.encoder, "progressive_stage", None)
            return self.n_latent - 1 if own is None else min(int(own), self.n_latent - 1)
        return progressive_stage(self.iterations_done(), self.progressive_start, self.progressive_step_every,
                                 self.n_latent)

    def label(self) -> str:
        return "e4e"

    def build_encoder(self, cfg: dict) -> nn.Module:
        return Encoder4Editing(input_nc=self.input_nc, n_styles=self.n_latent, style_dim=self.style_dim,
                               input_size=self.input_size, **cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self.encoder, "progressive_stage") and self.progressive_start is not None:
            self.encoder.progressive_stage = self.stage
        return self.offset(self.encoder(x))

    def configure_optimizers(self):
        opts = [self.make_optimizer(self.encoder.parameters())]
        if self.regularisers is not None:
            opts.append(self.make_optimizer(self.regularisers.discriminator.parameters(),
                                            self.discriminator_cfg["optimizer"]))
        return opts

    def e4e_terms(self, codes: torch.Tensor, stage: int) -> dict[str, torch.Tensor]:
        """The adversarial term of the active layers, while training progressively delta regularisation, and
        LSAP's alignment of the active layers when weighed."""
        terms = self.alignment_terms(codes, range(stage + 1))
        if self.regularisers is not None:
            terms["w_discriminator"] = self.regularisers.encoder_loss(codes, list(range(stage + 1)))
        if self.progressive_start is not None and self.weights.get("delta_norm", 0) > 0:
            terms["delta_norm"] = delta_regularization(codes, stage, self.delta_norm_p)
        return terms

    def train_latent_discriminator(self, fake_codes: torch.Tensor) -> None:
        """D on mapped w = f(z) against the base codes w0 of the batch, as the official `sample_real_and_fake_latents`
        does, but with the codes the generator receives (latent_avg included; see docs/methods.md)."""
        if self.regularisers is None:
            return
        with torch.no_grad():
            z = self.sample_normal("latent discriminator", len(fake_codes), self.style_dim)
            real_w = self.generator.get_latent(z)
        logs = self.regularisers.discriminator_step(self, real_w, fake_codes[:, 0].detach(), self.optimizers()[1],
                                                    self.iterations_done())
        self.log_dict(logs)

    def encoder_optimizer(self):
        opts = self.optimizers()
        return opts[0] if isinstance(opts, list) else opts

    def train_step(self, batch: dict) -> None:
        stage = self.stage
        codes = self.encode(batch["x"])
        self.train_latent_discriminator(codes)
        terms = {**self.image_losses(self.reconstruct(codes), batch["y"]), **self.e4e_terms(codes, stage)}
        loss = self.total(terms)
        opt = self.encoder_optimizer()
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        self.log("train/stage", float(stage))
