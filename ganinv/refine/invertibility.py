"""SAM's invertibility predictor (Parmar et al. 2022): from an image, for each latent space (W+ and the generator's
feature maps F4 ... F10), a map of the perceptual error an inversion into that space leaves at each pixel.

As the authors' `train_invertibility.py`: a pretrained backbone and a decoder to 8 channels at the image's size
(their DeepLab v3+, ResNet backbone, output stride 16), then one head per latent space (their `layer_head`:
transposed convolutions 8 -> 4 -> 1 with BatchNorm, LeakyReLU 0.2 and a final ReLU), regressed by MSE on the
spatial LPIPS maps of single-space inversions. Here the backbone is the toy perceptual net's (pretrained on toy
faces as theirs on ImageNet) and the decoder fuses its stages (the toy images are 64 px)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Latent spaces by the authors' names: W+, and F<k>, the features leaving the block at 2 ** (k / 2 + 2) px.
W_PLUS = "W+"


def space_resolution(name: str) -> int | None:
    """The block resolution of a feature space (`F4` -> 16 px), None for W+."""
    if name == W_PLUS:
        return None
    if not (name[:1] == "F" and name[1:].isdigit() and int(name[1:]) % 2 == 0):
        raise ValueError(f"{name!r} is not a latent space: W+ or F<even k> (F4 = the 16-px block's features)")
    return 2 ** (int(name[1:]) // 2 + 2)


class LayerHead(nn.Module):
    """One latent space's error map from the decoder's 8 channels."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.m = nn.Sequential(nn.ConvTranspose2d(channels, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                               nn.ConvTranspose2d(4, 1, 1, 1, 0), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.m(x)


class InvertibilityPredictor(nn.Module):
    """[-1, 1] images [B, 3, H, W] -> {space: predicted error map [B, 1, H, W]} for each of `spaces`."""

    def __init__(self, spaces: Sequence[str], width: int = 32, channels: int = 8):
        super().__init__()
        from ganinv.toy.nets import WIDTHS, Backbone

        for s in spaces:
            space_resolution(s)
        self.spaces, self.config = list(spaces), {"spaces": list(spaces), "width": width, "channels": channels}
        self.backbone = Backbone(WIDTHS)
        self.decoder = nn.Sequential(nn.Conv2d(sum(WIDTHS[1:]), width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU(),
                                     nn.Conv2d(width, channels, 1))
        self.heads = nn.ModuleList(LayerHead(channels) for _ in spaces)

    @classmethod
    def pretrained(cls, spaces: Sequence[str], **config) -> InvertibilityPredictor:
        """A new predictor whose backbone starts from the toy perceptual net's."""
        from ganinv.toy.nets import load_net

        net = cls(spaces, **config)
        net.backbone.load_state_dict(load_net("perceptual").backbone.state_dict())
        return net

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        feats = self.backbone(images)[1:]
        size = feats[0].shape[-2:]
        dense = torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats], 1)
        out = F.interpolate(self.decoder(dense), size=images.shape[-2:], mode="bilinear", align_corners=True)
        return {s: head(out) for s, head in zip(self.spaces, self.heads, strict=True)}

    def decoder_parameters(self) -> list[nn.Parameter]:
        """What the authors train at 10x the backbone's rate (DeepLab's ASPP and decoder)."""
        return list(self.decoder.parameters())

    def save(self, path: str | os.PathLike, **meta) -> None:
        from ganinv.checkpoints.safe_io import atomic_save

        atomic_save({"config": self.config, "state_dict": self.state_dict(), **meta}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[InvertibilityPredictor, dict]:
        """The predictor saved at `path` (eval mode) and the rest of the file (what it was trained on); a file the
        authors released loads as a `ReleasedPredictor` (the rest: `{"released": True}`)."""
        from ganinv.checkpoints.safe_io import CheckpointError, load_torch_file

        state = load_torch_file(path)
        if isinstance(state, dict) and "sd_base" in state:
            return ReleasedPredictor.from_state(state, path), {"released": True}
        if not isinstance(state, dict) or "state_dict" not in state or "spaces" not in state.get("config", {}):
            raise CheckpointError(path, "is not an invertibility predictor.",
                                  "Train one with `ganinv-train-invertibility checkpoint=<run> output=<file>`.")
        net = cls(**state["config"])
        try:
            net.load_state_dict(state["state_dict"])
        except RuntimeError as e:
            raise CheckpointError(path, f"does not match its config ({str(e).splitlines()[0][:160]}).",
                                  "Retrain it with ganinv-train-invertibility.") from None
        return net.eval().requires_grad_(False), {k: v for k, v in state.items() if k not in ("config", "state_dict")}


class ReleasedPredictor(nn.Module):
    """The authors' released predictors (`invertibility_faces_sg2.pt`, ..._cars_, ..._lsuncats_), by their key
    layout: `sd_base`, pytorch-deeplab-xception's DeepLab v3+ (ResNet-101, output stride 16, 8 channels), and one
    `layer_head` state per space (`W+`, `F4` ... `F10`); [-1, 1] images at the generator's size, as their
    `sam_inv_optimization.py` feeds it."""

    def __init__(self, spaces: Sequence[str]):
        super().__init__()
        from .deeplab import DeepLab

        self.spaces, self.base = list(spaces), DeepLab(8)
        self.heads = nn.ModuleList(LayerHead() for _ in spaces)

    @classmethod
    def from_state(cls, state: dict, path: str | os.PathLike) -> ReleasedPredictor:
        from ganinv.checkpoints.safe_io import CheckpointError, state_mismatch

        spaces = [k for k in state if k != "sd_base"]
        with torch.device("meta"):  # shapes only: the file's tensors are assigned below
            net = cls(spaces)
        for what, module, sd in (("sd_base", net.base, state["sd_base"]),
                                 *((s, h, state[s]) for s, h in zip(spaces, net.heads, strict=True))):
            mismatch = state_mismatch(module.state_dict(), sd, f"{what}.") if isinstance(sd, dict) else "no state"
            if mismatch:
                raise CheckpointError(path, f"is not one of SAM's released invertibility predictors ({what}: "
                                      f"{mismatch}).", "Pass the unmodified released file, or train one with "
                                      "ganinv-train-invertibility.")
            module.load_state_dict(sd, strict=True, assign=True)
        return net.eval().requires_grad_(False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        out = self.base(images)
        return {s: head(out) for s, head in zip(self.spaces, self.heads, strict=True)}


def spatial_error(perceptual_net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The perceptual error map [B, 1, H, W] the predictor learns: each layer's distance map brought to the image's
    size (bilinear) and summed, as `lpips.LPIPS(spatial=True)`."""
    return sum(F.interpolate(d, size=y.shape[-2:], mode="bilinear", align_corners=False)
               for d in perceptual_net.maps(x, y))
