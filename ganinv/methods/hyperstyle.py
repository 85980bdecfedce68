"""HyperStyle (Alaluf et al. 2022): keep a base encoder's code (e4e, or a W encoder) and predict, per image, offsets
of the generator's convolution weights with a hypernetwork on [image, current reconstruction]; N refinement
steps, each adding its offsets to the last; trained with the base and the generator frozen, L2 + LPIPS + ID at
every step (the gradients of all steps summed, one optimiser step per batch, as the official coach)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ganinv.encoders.hyperstyle import SharedWeightsHyperNetResNet
from ganinv.inversion import Inversion

from .on_base import OnBaseModule


def modulated_layers(generator: nn.Module) -> list[tuple[str, tuple[int, int, int, bool]]]:
    """(weight name, (kernel, in, out, to_rgb)) of each modulated convolution in the order the generator applies
    them: conv1, to_rgb1, then per resolution the upsampling conv, the conv and the ToRGB (HyperStyle's indices)."""
    names = ["conv1", "to_rgb1"]
    for k in range(len(generator.to_rgbs)):
        names += [f"convs.{2 * k}", f"convs.{2 * k + 1}", f"to_rgbs.{k}"]
    out = []
    for name in names:
        weight = generator.get_parameter(f"{name}.conv.weight")  # [1, out, in, k, k]
        out.append((f"{name}.conv.weight", (weight.shape[-1], weight.shape[2], weight.shape[1], "rgb" in name)))
    return out


class HyperStyleModule(OnBaseModule):
    """`layers_to_tune`: generator layer indices (default: every non-ToRGB layer, the official choice);
    `n_iters_per_batch` refinement steps in training and inference (official: 5); `encoder`: the hypernetwork's
    widths (ResNet34: 64-512) and `hyper_dim` (512)."""

    def __init__(self, *args, layers_to_tune: Sequence[int] | None = None, n_iters_per_batch: int = 5, **kwargs):
        self.layers_to_tune, self.n_iters = layers_to_tune, int(n_iters_per_batch)
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False  # one optimiser step after every refinement step's backward
        self.weight_names = [name for name, _ in modulated_layers(self.generator)]

    def label(self) -> str:
        return f"HyperStyle (on {self.hparams['base_method']['label']})"

    def build_encoder(self, cfg: dict) -> nn.Module:
        layers = [spec for _, spec in modulated_layers(self.generator)]
        tune = self.layers_to_tune if self.layers_to_tune is not None else [
            j for j, (*_, rgb) in enumerate(layers) if not rgb]
        return SharedWeightsHyperNetResNet(layers, tune, input_nc=self.input_nc + 3, input_size=self.input_size,
                                           **cfg)

    def offsets(self, deltas: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """Relative offsets δ as the additive offsets an `Inversion` holds: W · δ per image [B, 1, out, in, k, k]."""
        return {name: self.generator.get_parameter(name) * d.unsqueeze(1)
                for name, d in zip(self.weight_names, deltas) if d is not None}

    def refinement(self, x: torch.Tensor, codes: torch.Tensor, y_hat: torch.Tensor,
                   deltas: list[torch.Tensor | None] | None) -> tuple[list[torch.Tensor | None], torch.Tensor]:
        """One step: the hypernetwork's offsets added to the last ones, and the image they give (generator size)."""
        new = self.encoder(torch.cat([x, y_hat], 1))
        deltas = new if deltas is None else [None if d is None else d + n for d, n in zip(deltas, new)]
        return deltas, self.reconstruct(Inversion(codes, offsets=self.offsets(deltas)))

    def inversion(self, x: torch.Tensor) -> Inversion:
        start, y_hat = self.base_inversion(x)
        deltas = None
        for _ in range(self.n_iters):
            deltas, image = self.refinement(x, start.codes, y_hat, deltas)
            y_hat = self.pooled(image)
        return start.replace(offsets={**(start.offsets or {}), **self.offsets(deltas)})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_inversion(x)[0].codes

    def train_step(self, batch: dict) -> None:
        x, y = batch["x"], batch["y"]
        start, y_hat = self.base_inversion(x)
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        deltas = None
        for t in range(self.n_iters):
            if deltas is not None:
                deltas = [None if d is None else d.detach() for d in deltas]
            deltas, image = self.refinement(x, start.codes, y_hat.detach(), deltas)
            last = t == self.n_iters - 1
            with self.local_gradients(keep=not last):  # one all-reduce, of every step's gradients
                self.manual_backward(self.total(self.image_losses(image, y), "train" if last else f"train/step{t}"))
            y_hat = self.pooled(image)
        opt.step()
