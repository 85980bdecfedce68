"""Perceptual distances: LPIPS (`lpips` package, AlexNet / VGG trunk), a generic feature distance for any feature
net (the toy domain's), and In-Domain inversion's VGG16 conv4_3 term.

Backbone weights are never downloaded: they are read from a given path or from torchvision's cache
(`$TORCH_HOME/hub/checkpoints/`), and a missing file fails at construction with the file name and where to put it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.checkpoints.safe_io import CheckpointError, check_file, load_torch_file

# torchvision's ImageNet weight files, as `torch.hub` names them in its cache.
TORCHVISION_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth",
                     "resnet50": "resnet50-0676ba61.pth"}
TORCHVISION_URL = "https://download.pytorch.org/models/"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrozenNet(nn.Module):
    """A fixed loss network: no gradients to its weights, and always in eval mode (BN / dropout)."""

    def train(self, mode: bool = True) -> FrozenNet:
        return super().train(False)


def torchvision_weights(name: str, path: str | os.PathLike | None = None) -> Path:
    """Path of torchvision's weights `name` (alex, vgg, resnet50): `path` if given, else the torch hub cache."""
    file = TORCHVISION_FILES[name]
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    if path is not None:
        return check_file(path, (f"torchvision's ImageNet weights for '{name}' ({file}) are not at this path.",
                                 f"Put {file} ({TORCHVISION_URL}{file}) there, or pass no path to use "
                                 f"torchvision's cache {cache}/."))
    p = cache / file
    if not p.is_file():
        raise CheckpointError(p, f"torchvision's ImageNet weights for '{name}' are not available offline.",
                              f"Copy {file} ({TORCHVISION_URL}{file}) to {cache}/ (set TORCH_HOME to move that "
                              "folder), pass its path explicitly, or configure another perceptual / feature net.")
    return p


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> torchvision's ImageNet input normalisation."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return ((x + 1) / 2 - mean) / std


class LPIPS(FrozenNet):
    """LPIPS v0.1 of the `lpips` package, inputs in [-1, 1]; returns the batch mean (as pSp / e4e / ReStyle)."""

    def __init__(self, net: str = "alex", backbone_path: str | os.PathLike | None = None):
        super().__init__()
        if net not in ("alex", "vgg"):
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
        weights = torchvision_weights(net, backbone_path)  # fail before building anything
        import lpips

        with warnings.catch_warnings():  # lpips asks torchvision with the deprecated `pretrained=` flag
            warnings.simplefilter("ignore")
            self.model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
        lin_file = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
        _load_lpips(self.model, load_torch_file(weights), load_torch_file(lin_file), weights, lin_file)
        self.requires_grad_(False).eval()

    def per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distance per image [B] (the evaluation metric)."""
        return self.model(x, y).flatten()

    def maps(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's distance map [B, 1, h, w] at that layer's resolution (their spatial means sum to
        `per_image`): the official LPIPS's `keep_res` maps, which DHR segments and weighs with."""
        import lpips

        m = self.model
        fx, fy = m.net(m.scaling_layer(x)), m.net(m.scaling_layer(y))
        return [lin((lpips.normalize_tensor(a) - lpips.normalize_tensor(b)) ** 2)
                for lin, a, b in zip(m.lins, fx, fy, strict=True)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.per_image(x, y).mean()


def _load_lpips(model: nn.Module, trunk: dict, lins: dict, source: Path, lin_source: Path) -> None:
    """Trunk `features.{i}.*` (torchvision) -> `net.slice{k}.{i}.*`; calibrated `lin*` from the package.

    The package file stores `lin{i}.*`; the model also lists the same parameters as `lins.{i}.*` (a ModuleList of
    the same layers), which read the same entries.
    """
    sd = dict(model.state_dict())
    for key in list(sd):
        if key.startswith("net."):
            _, _, idx, param = key.split(".")
            src = f"features.{idx}.{param}"
            if src not in trunk or trunk[src].shape != sd[key].shape:
                raise CheckpointError(source, f"has no matching '{src}' for LPIPS; it is not torchvision's file.",
                                      "Use the unmodified torchvision ImageNet weights.")
            sd[key] = trunk[src]
        elif key.startswith("lin"):
            name = re.sub(r"^lins\.(\d+)\.", r"lin\1.", key)
            if name not in lins:
                raise CheckpointError(lin_source, f"has no '{name}'; the lpips package's v0.1 weights look damaged.",
                                      "Reinstall the lpips package.")
            sd[key] = lins[name]
    model.load_state_dict(sd, strict=True)


class FeatureDistance(FrozenNet):
    """Distance between the features of any frozen net (e.g. the toy perceptual net).

    `net(x)` returns one feature map or a sequence of them; each is unit-normalised over channels (as LPIPS does)
    unless `normalize=False`, and the squared differences are summed over channels, averaged over space and
    summed over maps; the result is the batch mean.
    """

    def __init__(self, net: nn.Module, normalize: bool = True):
        super().__init__()
        self.net = net.requires_grad_(False).eval()
        self.normalize = normalize

    def per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = _as_list(self.net(x)), _as_list(self.net(y))
        total = x.new_zeros(len(x))
        for a, b in zip(fx, fy):
            if self.normalize:
                a, b = F.normalize(a, dim=1, eps=1e-10), F.normalize(b, dim=1, eps=1e-10)
            total = total + (a - b).pow(2).sum(1).flatten(1).mean(1)
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.per_image(x, y).mean()


class MeanDistance(FrozenNet):
    """A frozen distance net `net(x, y) -> [B]` (e.g. the toy perceptual net) as a loss term: the batch mean."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.requires_grad_(False).eval()

    def per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(x, y).flatten()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.per_image(x, y).mean()

    def maps(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's distance map [B, 1, h, w], where the net gives them (`maps`, as the toy perceptual net)."""
        if not hasattr(self.net, "maps"):
            raise TypeError(f"{type(self.net).__name__} gives no spatial distance maps")
        return self.net.maps(x, y)


def _as_list(f: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [f] if isinstance(f, torch.Tensor) else list(f)


def vgg16_conv4_3(weights_path: str | os.PathLike | None = None) -> nn.Sequential:
    """torchvision VGG16 `features[:23]`: up to conv4_3 + ReLU (Keras `block4_conv3`, as In-Domain uses)."""
    from torchvision.models import vgg16

    p = torchvision_weights("vgg", weights_path)
    sd = {k[len("features."):]: v for k, v in load_torch_file(p).items() if k.startswith("features.")}
    net = vgg16(weights=None).features[:23]
    missing = [k for k in net.state_dict() if k not in sd]
    if missing:
        raise CheckpointError(p, f"is not a torchvision VGG16 state dict (missing features.{missing[0]}).",
                              "Use torchvision's vgg16-397923af.pth.")
    net.load_state_dict({k: v for k, v in sd.items() if k in net.state_dict()}, strict=True)
    return net


class InDomainPerceptual(FrozenNet):
    """In-Domain inversion's feature term: mean squared difference of conv4_3 features (VGG16 by default).

    Pass `net` (any frozen feature net, e.g. the toy one; fed [-1, 1] images) or `weights_path` for VGG16, which
    gets ImageNet-normalised input. `resize` matches the official 256-px nearest resize of both images.
    """

    def __init__(self, net: nn.Module | None = None, weights_path: str | os.PathLike | None = None,
                 resize: int | None = 256):
        super().__init__()
        self.is_vgg = net is None
        self.net = (vgg16_conv4_3(weights_path) if net is None else net).requires_grad_(False).eval()
        self.resize = resize

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize is not None and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="nearest")
        return self.net(imagenet_normalize(x) if self.is_vgg else x)

    def per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.features(x) - self.features(y)).pow(2).flatten(1).mean(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.per_image(x, y).mean()
