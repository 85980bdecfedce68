"""ReStyle (Alaluf et al. 2021, "A Residual-Based StyleGAN Encoder via Iterative Refinement"): the encoder sees
the image and the current reconstruction and predicts a residual to the current code, starting from the average
code and its image; trained with a loss and a backward at every refinement step. pSp and e4e variants (the e4e
variant adds e4e's progressive offsets, delta regularisation and latent discriminator), IR-SE or ResNet34."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.encoders import (
    BackboneEncoder,
    ProgressiveBackboneEncoder,
    ResNetBackboneEncoder,
    ResNetProgressiveBackboneEncoder,
)
from ganinv.inversion import Inversion
from ganinv.losses import w_norm

from .e4e import E4EModule
from .psp import PSPModule

ENCODERS = {("psp", "irse"): BackboneEncoder, ("psp", "resnet"): ResNetBackboneEncoder,
            ("e4e", "irse"): ProgressiveBackboneEncoder, ("e4e", "resnet"): ResNetProgressiveBackboneEncoder}


@dataclass
class ReStyleStep:
    """One refinement step: the encoder's residual, the updated code, its image (generator size)."""

    delta: torch.Tensor
    latent: torch.Tensor
    image: torch.Tensor


class ReStyleModule(E4EModule):
    """`variant: psp | e4e`, `backbone: irse | resnet`, `n_iters_per_batch` refinement steps (5)."""

    def __init__(self, *args, variant: str = "psp", backbone: str = "irse", n_iters_per_batch: int = 5, **kwargs):
        if (variant, backbone) not in ENCODERS:
            raise ValueError(f"variant={variant!r}, backbone={backbone!r}: choose variant psp | e4e and backbone "
                             "irse | resnet")
        if kwargs.get("start_from", "avg") != "avg":
            raise ValueError("ReStyle starts from the average code and its image: start_from must be avg")
        self.variant, self.backbone, self.n_iters = variant, backbone, int(n_iters_per_batch)
        if variant == "psp":
            kwargs.setdefault("progressive_start", None)
        super().__init__(*args, **kwargs)

    def loss_terms(self) -> tuple[str, ...]:
        """pSp's terms for the pSp variant (W-norm of the refined code), e4e's for the e4e variant."""
        return PSPModule.TERMS if self.variant == "psp" else E4EModule.TERMS

    @property
    def find_unused_parameters(self) -> bool:
        """Only the e4e variant: its latent discriminator's own backward and its inactive heads."""
        return self.regularisers is not None or self.progressive_start is not None

    def label(self) -> str:
        backbone = " (ResNet34)" if self.backbone == "resnet" else ""
        return f"ReStyle-{'pSp' if self.variant == 'psp' else 'e4e'}{backbone}"

    def build_encoder(self, cfg: dict) -> nn.Module:
        cls = ENCODERS[(self.variant, self.backbone)]
        return cls(input_nc=self.input_nc + 3, n_styles=self.n_latent, style_dim=self.style_dim,
                   input_size=self.input_size, **cfg)

    def start(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The average code [B, n_latent, dim] and its image at the encoder's input size, ŷ_0."""
        avg = self.latent_avg.unsqueeze(0)
        key = (avg.data_ptr(), avg._version, avg.device)  # rendered again only when latent_avg changes
        if getattr(self, "_avg_image", (None,))[0] != key:
            with torch.no_grad():
                self._avg_image = key, F.adaptive_avg_pool2d(self.reconstruct(avg), self.input_size)
        return avg.expand(len(x), -1, -1), self._avg_image[1].expand(len(x), -1, -1, -1)

    def step(self, x: torch.Tensor, latent: torch.Tensor, y_hat: torch.Tensor) -> ReStyleStep:
        """w_t = w_{t-1} + E([x, ŷ_{t-1}]) and its image."""
        if hasattr(self.encoder, "progressive_stage") and self.progressive_start is not None:
            self.encoder.progressive_stage = self.stage
        delta = self.encoder(torch.cat([x, y_hat], 1))
        latent = latent + delta
        return ReStyleStep(delta, latent, self.reconstruct(latent))

    @torch.no_grad()
    def invert_steps(self, images: torch.Tensor, n_iters: int | None = None) -> list[ReStyleStep]:
        """Every refinement step's residual, code and image for images of any size."""
        from ganinv.data.transforms import resize

        x = resize(images.to(self.latent_avg), self.input_size)
        latent, y_hat = self.start(x)
        steps = []
        for _ in range(n_iters or self.n_iters):
            steps.append(self.step(x, latent, y_hat))
            latent, y_hat = steps[-1].latent, F.adaptive_avg_pool2d(steps[-1].image, self.input_size)
        return steps

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.invert_steps(x)[-1].latent

    def train_step(self, batch: dict) -> None:
        x, y, stage = batch["x"], batch["y"], self.stage
        latent, y_hat = self.start(x)
        opt = self.encoder_optimizer()
        opt.zero_grad(set_to_none=True)
        for t in range(self.n_iters):
            s = self.step(x, latent.detach(), y_hat.detach())
            if t == 0:
                self.train_latent_discriminator(s.latent)
            terms = {**self.image_losses(s.image, y), **self.e4e_terms(s.latent, stage)}
            if self.weights.get("w_norm", 0) > 0:
                terms["w_norm"] = w_norm(s.latent, self.latent_avg)
            last = t == self.n_iters - 1
            with self.local_gradients(keep=not last):  # one all-reduce, of every step's gradients
                self.manual_backward(self.total(terms, "train" if last else f"train/step{t}"))
            latent, y_hat = s.latent, F.adaptive_avg_pool2d(s.image, self.input_size)
        opt.step()  # the gradients of every step, accumulated, as the official training does
        if self.progressive_start is not None:
            self.log("train/stage", float(stage))

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        began = time.perf_counter()
        steps = self.invert_steps(batch["x"])
        seconds = time.perf_counter() - began
        for k, s in enumerate(steps):
            self.log_distortion(s.image, batch["y"], f"val/step{k}")
        return self.validated(batch, Inversion(steps[-1].latent), steps[-1].image, seconds)
