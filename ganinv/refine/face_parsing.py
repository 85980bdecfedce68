"""Face parsers for the refiners that segment a face (DHR, SAM): the toy domain's, and for real photos BiSeNet with the
released face-parsing.PyTorch weights (`79999_iter.pth`, 19 CelebAMask-HQ classes; the parser SAM's authors and GAN
Inverter's `models/segmenter.py` load), read by its own key layout with a weights-only load.

A parser maps [-1, 1] images [B, 3, H, W] to label maps [B, H, W] (int64) and names its labels (`labels`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.checkpoints.safe_io import CheckpointError, load_torch_file, state_mismatch

BISENET_FILE = "79999_iter.pth"
# face-parsing.PyTorch's classes, in its output order (CelebAMask-HQ's 18 parts and the background)
CELEBAMASK_LABELS = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
                     "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")
PARSERS = ("toy", "bisenet")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def face_parser(name: str, weights: str | os.PathLike | None = None) -> nn.Module:
    """The parser `name` (toy | bisenet); bisenet reads `weights` (the released 79999_iter.pth)."""
    if name == "toy":
        from ganinv.toy import ToyFaceParser

        return ToyFaceParser()
    if name == "bisenet":
        if weights is None:
            raise ValueError(f"refine.parser=bisenet needs refine.parser_weights=<{BISENET_FILE}> (face-parsing."
                             "PyTorch's released BiSeNet)")
        return BiSeNetParser.from_file(weights)
    raise ValueError(f"refine.parser={name!r}: choose one of {', '.join(PARSERS)}")


class BiSeNetParser(nn.Module):
    """BiSeNet face parsing as face-parsing.PyTorch's test script runs it: the image resized to 512 px (bilinear),
    ImageNet normalisation, the main output's arg-max; the labels brought back to the image's size (nearest)."""

    labels = CELEBAMASK_LABELS

    def __init__(self, net: BiSeNet):
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> BiSeNetParser:
        missing = (f"the BiSeNet face-parsing weights file {Path(path).expanduser()} is missing.",
                   f"Download {BISENET_FILE} (zllrunning/face-parsing.PyTorch, the parser of SAM's README) and pass "
                   "its path as refine.parser_weights.")
        sd = load_torch_file(path, missing)
        with torch.device("meta"):  # shapes only: the file's tensors are assigned below
            net = BiSeNet(len(CELEBAMASK_LABELS))
        mismatch = state_mismatch(net.state_dict(), sd) if isinstance(sd, dict) else "not a state dict"
        if mismatch:
            raise CheckpointError(path, f"is not face-parsing.PyTorch's BiSeNet ({BISENET_FILE}): {mismatch}.",
                                  "Pass the unmodified released weights file.")
        net.load_state_dict(sd, strict=True, assign=True)
        return cls(net)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = F.interpolate((images.float() + 1) / 2, size=(512, 512), mode="bilinear", align_corners=False,
                          antialias=images.shape[-1] > 512)
        mean, std = (x.new_tensor(v)[:, None, None] for v in (IMAGENET_MEAN, IMAGENET_STD))
        labels = self.net((x - mean) / std).argmax(1, keepdim=True).float()
        return F.interpolate(labels, size=images.shape[-2:], mode="nearest")[:, 0].long()


class ConvBN(nn.Module):
    """face-parsing.PyTorch's ConvBNReLU (`conv`, `bn`)."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class Head(nn.Module):
    """BiSeNetOutput: ConvBNReLU then a 1x1 conv to the classes."""

    def __init__(self, cin: int, mid: int, n: int):
        super().__init__()
        self.conv, self.conv_out = ConvBN(cin, mid), nn.Conv2d(mid, n, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_out(self.conv(x))


class Attention(nn.Module):
    """AttentionRefinementModule: features scaled by a sigmoid of their pooled projection."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBN(cin, cout)
        self.conv_atten, self.bn_atten = nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))


class ContextPath(nn.Module):
    """ResNet-18 features at 1/8, 1/16, 1/32, the deeper two refined by attention and carried up (nearest)."""

    def __init__(self):
        super().__init__()
        from torchvision.models import resnet18

        self.resnet = resnet18(weights=None)
        del self.resnet.fc, self.resnet.avgpool
        self.arm16, self.arm32 = Attention(256, 128), Attention(512, 128)
        self.conv_head32, self.conv_head16 = ConvBN(128, 128), ConvBN(128, 128)
        self.conv_avg = ConvBN(512, 128, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        feat8 = r.layer2(r.layer1(x))
        feat16 = r.layer3(feat8)
        feat32 = r.layer4(feat16)
        up32 = self.arm32(feat32) + self.conv_avg(feat32.mean((2, 3), keepdim=True))
        up32 = self.conv_head32(F.interpolate(up32, size=feat16.shape[-2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(feat16) + up32, size=feat8.shape[-2:], mode="nearest"))
        return feat8, up16


class Fusion(nn.Module):
    """FeatureFusionModule: concatenation, 1x1 conv, channel attention added back."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBN(cin, cout, 1)
        self.conv1, self.conv2 = nn.Conv2d(cout, cout // 4, 1, bias=False), nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        feat = self.convblk(torch.cat([a, b], 1))
        return feat + feat * torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))


class BiSeNet(nn.Module):
    """face-parsing.PyTorch's BiSeNet (spatial path replaced by the 1/8 ResNet features), its key names; the
    auxiliary heads `conv_out16` / `conv_out32` are kept for the file's keys and not run."""

    def __init__(self, n_classes: int = 19):
        super().__init__()
        self.cp, self.ffm = ContextPath(), Fusion(256, 256)
        self.conv_out = Head(256, 256, n_classes)
        self.conv_out16, self.conv_out32 = Head(128, 64, n_classes), Head(128, 64, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """The main output's logits [B, n, H, W] (bilinear, corners aligned, as the released code)."""
        feat8, up16 = self.cp(x)
        out = self.conv_out(self.ffm(feat8, up16))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)
