"""StyleRes (Pehlivan et al. 2023): on a frozen base encoder (e4e), residual features carry what its codes miss.
E1 aligns the base encoder's own features at the embedding resolution (1/4 of the input; 64x64 from 256 px) with
the generator's features of the inverted codes and extracts the residual; E2 fits that residual to the features of
the codes being rendered — after an edit, other features — as a gated change of the generator's features after that
resolution's upsampling convolution. Trained with the paper's cycle: an edited render, inverted again and edited
back, must give the input image again."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ganinv.data.transforms import resize
from ganinv.editing import edit
from ganinv.encoders.styleres import StyleResNets
from ganinv.inversion import Inversion

from .base import ConfigError, InversionModule
from .feature_space import TrainingEdits, own_features
from .on_base import OnBaseModule


def tapped_channels(base) -> int | None:
    """The channels of the base encoder's features StyleRes reads (None without a base)."""
    if not isinstance(base, InversionModule):
        return None
    encoder = base.encoder
    if not hasattr(encoder, "body") or not hasattr(encoder, "taps"):
        raise ConfigError(f"StyleRes reads its base encoder's features at 1/4 of the input: method.base is a "
                          f"{type(base).__name__}; give a pSp-family (IR-SE) encoder such as e4e")
    unit = encoder.body[encoder.taps[0]]
    return [m for m in unit.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features


class StyleResModule(OnBaseModule):
    """`encoder.width`: E1's and E2's inner width (official 512); `directions` / `edit_strengths`: the edits the
    cycle draws (the paper: InterFaceGAN, GANSpace and StyleCLIP edits); loss terms l2, perceptual, id over the
    reconstruction and the cycle's image together."""

    def __init__(self, *args, directions: str | None = None, edit_strengths: Sequence[float] = (-6, -3, 3, 6),
                 **kwargs):
        self.edits = TrainingEdits(directions, edit_strengths)
        self.encoder_channels = tapped_channels(kwargs.get("base"))
        super().__init__(*args, **kwargs)

    @property
    def resolution(self) -> int:
        return self.input_size // 4

    def label(self) -> str:
        return f"StyleRes (on {self.hparams['base_method']['label']})"

    def build_encoder(self, cfg: dict) -> nn.Module:
        if self.resolution not in self.generator.channels or self.resolution < 8:
            raise ConfigError(f"StyleRes embeds at the generator's {self.resolution}-px features (input_size / 4), "
                              f"which this {self.generator.size}-px generator does not have: choose input_size 32 .. "
                              f"{self.generator.size * 4}")
        if self.encoder_channels is None:  # no base: OnBaseModule's error
            return nn.Identity()
        return StyleResNets(self.encoder_channels, self.generator.channels[self.resolution], **cfg)

    @contextmanager
    def tapped(self):
        """The base encoder's features at 1/4 of its input (the last unit of its second stage: e4e's c1), caught
        while it runs."""
        caught = {}
        unit = self.base.encoder.body[self.base.encoder.taps[0]]
        handle = unit.register_forward_hook(lambda _m, _i, out: caught.__setitem__("c1", out))
        try:
            yield caught
        finally:
            handle.remove()

    def base_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The base's codes and encoder features of inputs at `input_size` (with gradients to the inputs where
        the caller allows them; the base's weights stay frozen)."""
        with self.tapped() as caught:
            codes = self.base.inversion(resize(x, self.base.input_size)).codes
        feats = caught["c1"]
        if feats.shape[-1] != self.resolution:
            feats = resize(feats, self.resolution)
        return codes, feats

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_inversion(x)[0].codes

    def inversion(self, x: torch.Tensor) -> Inversion:
        with torch.no_grad():
            codes, feats = self.base_parts(x)
        return Inversion(codes, extra={"origin": codes, "encoded": feats})

    def generate(self, inv: Inversion) -> torch.Tensor:
        """E1 on the encoder features and the generator's features of the inverted codes; E2 on that and the
        generator's features of the codes rendered: features · (1 - gate) + (features + change) · gate."""
        if not inv.extra:
            return super().generate(inv)
        nets, r = self.encoder, self.resolution
        inverted = own_features(self, inv.extra["origin"], r, "up")
        aligned = nets.modify_feature_extraction(
            nets.modify_feature_alignment(inv.extra["encoded"].to(inverted), inverted))
        rendered = own_features(self, inv.codes, r, "up")
        change, gate = nets.modify_feature_gates(rendered, aligned)
        return self.generator([inv.codes], input_is_latent=True, noise=inv.noise, randomize_noise=False,
                              offsets=inv.offsets, features=inv.features,
                              conditions={r: (torch.zeros_like(gate), gate * change)})[0]

    def train_step(self, batch: dict) -> torch.Tensor:
        """The reconstruction, and the cycle: the inversion edited, rendered, inverted again (the frozen base,
        gradients through its activations), edited back and rendered, against the same image."""
        x, y = batch["x"], batch["y"]
        d = self.edits.draw(self.generator, self.iterations_done(), "styleres-edit")
        inv = self.inversion(x)
        image = self.reconstruct(inv)
        edited = self.pooled(self.reconstruct(edit(inv, d.direction, d.alpha, d.layers)))
        codes, feats = self.base_parts(resize(edited, self.input_size))
        back = Inversion(edit(codes, d.direction, -d.alpha, d.layers), extra={"origin": codes, "encoded": feats})
        cycle = self.reconstruct(back)
        return self.total(self.image_losses(torch.cat([image, cycle]), torch.cat([y, y])))
