"""SFE, StyleFeatureEditor (Bobkov et al. 2024). The inverter predicts W+ codes and a feature tensor at 1/4 of the
input (64x64 of a 1024-px generator), which the fuser merges with the generator's own features of those codes; the
fused tensor replaces the generator's features leaving that block. The feature editor turns the fused tensor into
the one an edit needs, given how the edit changes the generator's features of a frozen base encoder's (e4e's)
codes. Two phases, as the official: the inverter first (its features blended in over a warm-up), then the editor
alone, on pairs the generator makes: e4e's reconstruction of an image and its edit, the inverter's inversion of
that reconstruction and the same edit, whose render must be the generator's edited image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.data.transforms import resize
from ganinv.editing import edit
from ganinv.encoders.feature_style import LAYOUTS, SFENets
from ganinv.inversion import Inversion

from .base import ConfigError, InversionModule, match_size
from .feature_space import TrainingEdits, blend_scale, blended, own_features
from .on_base import OnBaseModule


class SFEModule(OnBaseModule):
    """`editor_from`: the iteration at which the inverter freezes and the editor trains (the official runs them
    as two trainings); `feature_warmup`: iterations over which the inverter's features are blended in (official
    10 000); `directions` / `edit_strengths`: the edits the editor trains on (official: InterFaceGAN, GANSpace
    and StyleCLIP directions at listed strengths); loss terms l2, perceptual, id and `feat_rec` (the fused
    features' MSE to the generator's own, official 0.01, inverter phase)."""

    TERMS = (*InversionModule.TERMS, "feat_rec")

    def __init__(self, *args, editor_from: int = 200_000, feature_warmup: int = 10_000,
                 directions: str | None = None, edit_strengths: Sequence[float] = (-6, -3, 3, 6), **kwargs):
        self.editor_from, self.feature_warmup = int(editor_from), int(feature_warmup)
        self.edits = TrainingEdits(directions, edit_strengths)
        super().__init__(*args, **kwargs)

    @property
    def resolution(self) -> int:
        return self.input_size // LAYOUTS["sfe"]

    def label(self) -> str:
        return f"SFE (edits by {self.hparams['base_method']['label']})"

    def build_encoder(self, cfg: dict) -> nn.Module:
        if self.resolution not in self.generator.channels:
            raise ConfigError(f"SFE predicts the generator's {self.resolution}-px features (input_size / 4), which "
                              f"this {self.generator.size}-px generator does not have: choose input_size 16 .. "
                              f"{self.generator.size * 4}")
        return SFENets(self.n_latent, self.style_dim, self.generator.channels[self.resolution], **cfg)

    def editing_phase(self) -> bool:
        return self.iterations_done() >= self.editor_from

    @property
    def find_unused_parameters(self) -> bool:
        return True  # each phase's backward reaches only its own networks

    def inverted(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverter's codes and fused features for inputs at `input_size`."""
        codes, predicted = self.encoder.fs_backbone(x)
        codes = self.offset(codes)
        own = own_features(self, codes, self.resolution)
        return codes, self.encoder.fuser(torch.cat([predicted.to(own), own], 1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.offset(self.encoder.fs_backbone(x)[0])

    def inversion(self, x: torch.Tensor) -> Inversion:
        codes, fused = self.inverted(x)
        return Inversion(codes, extra={"origin": codes, "base": self.base_codes(x), "fused": fused})

    @torch.no_grad()
    def base_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.inversion(resize(x, self.base.input_size)).codes

    def feature_delta(self, base: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        """How an edit changes the generator's features of the base's codes (official sign: before - after)."""
        return own_features(self, base, self.resolution) - own_features(self, moved, self.resolution)

    def render(self, codes: torch.Tensor, feat: torch.Tensor, scale: float = 1.0, inv: Inversion | None = None
               ) -> torch.Tensor:
        """The image of `codes` with `feat` blended in by `scale` (and what else `inv` holds: noise, offsets)."""
        inv = Inversion(codes) if inv is None else inv.replace(codes=codes, extra=None)
        features = {**(inv.features or {}), self.resolution: blended(feat, scale)}
        return self.reconstruct(inv.replace(features=features))

    def generate(self, inv: Inversion) -> torch.Tensor:
        """The codes (edited or not) with the fused features, through the editor once it is trained: the base's
        codes moved by the same edit give the feature delta it reads."""
        if not inv.extra:
            return super().generate(inv)
        e = inv.extra
        if not self.editing_phase():  # the inverter alone: its features stay as inverted
            return self.render(inv.codes, e["fused"], blend_scale(self.iterations_done(), self.feature_warmup), inv)
        delta = self.feature_delta(e["base"], e["base"] + (inv.codes - e["origin"]))
        return self.render(inv.codes, self.encoder.editor(torch.cat([e["fused"], delta.to(e["fused"])], 1)), inv=inv)

    def train_step(self, batch: dict) -> torch.Tensor:
        return self.editor_step(batch) if self.editing_phase() else self.inverter_step(batch)

    def inverter_step(self, batch: dict) -> torch.Tensor:
        """The codes with the fused features and the codes alone, both against the image; the fused features
        kept near the generator's own."""
        x, y = batch["x"], batch["y"]
        codes, predicted = self.encoder.fs_backbone(x)
        codes = self.offset(codes)
        own = own_features(self, codes, self.resolution)
        fused = self.encoder.fuser(torch.cat([predicted.to(own), own], 1))
        s = blend_scale(self.iterations_done(), self.feature_warmup)
        images = torch.cat([self.render(codes, fused, s), self.reconstruct(Inversion(codes))])
        terms = {**self.image_losses(images, torch.cat([y, y])), "feat_rec": F.mse_loss(fused, own)}
        return self.total(terms)

    def editor_step(self, batch: dict) -> torch.Tensor:
        """The editor on the inversion (no edit: delta 0) and on a generated pair: e4e's codes of the image and
        their edit give the target (the generator's edited image) and the delta; the inverter inverts e4e's
        reconstruction, the same edit moves its codes, and the editor must make that render the target."""
        x, y = batch["x"], batch["y"]
        d = self.edits.draw(self.generator, self.iterations_done(), "sfe-edit")
        self.encoder.fs_backbone.eval(), self.encoder.fuser.eval()  # frozen, as the official's inverter
        with torch.no_grad():
            codes, fused = self.inverted(x)
            base = self.base_codes(x)
            moved = edit(base, d.direction, d.alpha, d.layers)
            target = match_size(self.reconstruct(Inversion(moved)), y).clamp(-1, 1)
            seen = self.pooled(self.reconstruct(Inversion(base))).clamp(-1, 1)
            delta = self.feature_delta(base, moved)
            seen_codes, seen_fused = self.inverted(resize(seen, self.input_size))
        still = self.render(codes, self.encoder.editor(torch.cat([fused, torch.zeros_like(fused)], 1)))
        edited = self.render(edit(seen_codes, d.direction, d.alpha, d.layers),
                             self.encoder.editor(torch.cat([seen_fused, delta.to(seen_fused)], 1)))
        return self.total(self.image_losses(torch.cat([still, edited]), torch.cat([y, target])))
