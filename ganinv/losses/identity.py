"""Identity similarity, one interface for the face-recognition IR backbones (ArcFace IR-SE50, CurricularFace IR-101),
MoCo-v2 ResNet-50 (other domains) and any embedding net (the toy identity embedder): loss = mean(1 - cos(E(y_hat),
E(y))), the target embedding detached.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.checkpoints.safe_io import CheckpointError, load_torch_file
from ganinv.encoders.ir_se import infer_ir_arch, make_body, make_input_layer

from .perceptual import FrozenNet

# Where the released files come from; the loss configs read them from `weights_dir`.
ARCFACE_FILE = ("model_ir_se50.pth", "TreB1eN's InsightFace_Pytorch IR-SE50, the 'IR-SE50 Model' of the "
                "pixel2style2pixel README")
MOCO_FILE = ("moco_v2_800ep_pretrain.pt", "facebookresearch/moco's MoCo v2 ResNet-50 (800 epochs), the 'MoCo "
             "ResNet-50' of the pixel2style2pixel README")
WEIGHTS_DIR_HINT = "the loss configs look for it in weights_dir: $GANINV_WEIGHTS, default ./weights"

# pSp's face crop of a 256-px aligned FFHQ image (rows 35:223, columns 32:220), then pooled to ArcFace's 112 px.
ARCFACE_CROP = (slice(35, 223), slice(32, 220))


class ArcFaceBackbone(nn.Module):
    """InsightFace IR backbone for 112-px faces with the released key names; unit-norm output. The defaults are
    ArcFace IR-SE50 (`model_ir_se50.pth`); CurricularFace's `CurricularFace_Backbone.pth` is IR-101 without SE and
    without an affine final BatchNorm (`num_layers=100, mode="ir", affine=False`)."""

    def __init__(self, num_layers: int = 50, mode: str = "ir_se", embedding_dim: int = 512, drop_ratio: float = 0.6,
                 affine: bool = True):
        super().__init__()
        self.input_layer = make_input_layer(3, 64)
        self.body = make_body(num_layers, mode)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, embedding_dim),
                                          nn.BatchNorm1d(embedding_dim, affine=affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


def arcface_preprocess(x: torch.Tensor) -> torch.Tensor:
    """Pool to 256 px if needed, crop the face region, average-pool to 112 px (as pSp's ID loss)."""
    if x.shape[-1] != 256 or x.shape[-2] != 256:
        x = F.adaptive_avg_pool2d(x, (256, 256))
    return F.adaptive_avg_pool2d(x[:, :, ARCFACE_CROP[0], ARCFACE_CROP[1]], (112, 112))


def moco_preprocess(x: torch.Tensor) -> torch.Tensor:
    """MoCo loss input: nearest resize to 224 px, no further normalisation (as the official loss)."""
    return F.interpolate(x, size=224)


class IdentitySimilarity(FrozenNet):
    """Cosine similarity of a frozen embedder's (pre-processed) outputs; `forward` is the identity loss.
    `protocol`: how the metric is computed, in words (written into evaluation records)."""

    may_skip = False  # whether `similarity` may be NaN for a pair it cannot score (no face found)
    metric_name = "id_sim"  # its name among the metrics: one name per protocol

    def __init__(self, embedder: nn.Module, preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 protocol: str | None = None):
        super().__init__()
        self.embedder = embedder.requires_grad_(False).eval()
        self.preprocess, self.protocol = preprocess, protocol

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return F.normalize(self.embedder(x).flatten(1), dim=1)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-sample cosine similarity [B]."""
        return (self.embed(a) * self.embed(b)).sum(1)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (1 - (self.embed(y_hat) * self.embed(y).detach()).sum(1)).mean()


def arcface_identity(path: str | os.PathLike) -> IdentitySimilarity:
    """The face ID loss / metric from a released IR backbone: pSp / e4e / ReStyle's ArcFace IR-SE50
    (`model_ir_se50.pth`), or another IR-50/100/152 with the same key names, e.g. CurricularFace's IR-101
    (`CurricularFace_Backbone.pth`, the identity metric of the ReStyle and HyperStyle papers); the depth, SE blocks
    and final BatchNorm are read off the file."""
    what = "an ArcFace IR-SE50 (model_ir_se50.pth) or other IR-50/100/152 face backbone state dict"
    sd = load_torch_file(path, _missing(path, "ArcFace IR-SE50", ARCFACE_FILE))
    try:
        arch = infer_ir_arch(sd) if isinstance(sd, dict) else None
    except (KeyError, ValueError, AttributeError):
        arch = None
    net = ArcFaceBackbone() if arch is None else ArcFaceBackbone(
        arch["num_layers"], arch["mode"], affine="output_layer.4.weight" in sd)
    _strict(net, sd, path, what)
    return IdentitySimilarity(net, arcface_preprocess, f"cosine similarity of {Path(path).name} embeddings of pSp's "
                              "fixed face crop (rows 35:223, columns 32:220 of the 256-px image, average-pooled to "
                              "112 px), per image, averaged")


def moco_identity(path: str | os.PathLike) -> IdentitySimilarity:
    """MoCo-v2 ResNet-50 similarity (`moco_v2_800ep_pretrain.pt`: `state_dict` with `module.encoder_q.*`)."""
    from torchvision.models import resnet50

    raw = load_torch_file(path, _missing(path, "MoCo-v2", MOCO_FILE))
    sd = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
    prefix = "module.encoder_q."
    sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix) and not k.startswith(prefix + "fc")}
    net = resnet50(weights=None)
    net.fc = nn.Identity()  # the embedding is the pooled 2048-d feature, as the official loss uses
    _strict(net, sd, path, "a MoCo-v2 checkpoint (state_dict with module.encoder_q.* keys)")
    return IdentitySimilarity(net, moco_preprocess)


def module_identity(net: nn.Module, input_size: int | None = None) -> IdentitySimilarity:
    """Any embedding net (e.g. the toy identity embedder); images are average-pooled to `input_size` if given."""
    pre = None if input_size is None else (lambda x: _pool(x, input_size))
    return IdentitySimilarity(net, pre)


def _missing(path: str | os.PathLike, what: str, release: tuple[str, str]) -> tuple[str, str]:
    """What to say when a released weights file is absent: where it comes from and where to put it."""
    name, origin = release
    return (f"the {what} weights file is missing.",
            f"Download {name} ({origin}) and put it at {Path(path).expanduser()} ({WEIGHTS_DIR_HINT}), "
            "or pass its path.")


def _pool(x: torch.Tensor, size: int) -> torch.Tensor:
    return x if x.shape[-1] == size else F.adaptive_avg_pool2d(x, (size, size))


def _strict(net: nn.Module, sd: object, path: str | os.PathLike, what: str) -> None:
    own = net.state_dict()
    if not isinstance(sd, dict):
        raise CheckpointError(path, f"is not {what}.")
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    bad = [k for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or bad:
        raise CheckpointError(path, f"is not {what}: missing {missing[:3]}, unexpected {unexpected[:3]}, "
                              f"shape mismatches {bad[:3]}.", "Pass the unmodified released weights file.")
    net.load_state_dict(sd, strict=True)
