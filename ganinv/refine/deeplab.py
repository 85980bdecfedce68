"""DeepLab v3+ as pytorch-deeplab-xception builds it (ResNet-101 backbone, output stride 16), with its key names:
the network of SAM's released invertibility predictors (`sd_base` of `invertibility_faces_sg2.pt`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn_relu(cin: int, cout: int, k: int, dilation: int = 1) -> list[nn.Module]:
    pad = 0 if k == 1 else dilation
    return [nn.Conv2d(cin, cout, k, 1, pad, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class Branch(nn.Module):
    """_ASPPModule: one atrous convolution (`atrous_conv`, `bn`)."""

    def __init__(self, cin: int, cout: int, k: int, dilation: int):
        super().__init__()
        self.atrous_conv, self.bn, _ = conv_bn_relu(cin, cout, k, dilation)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.atrous_conv(x)))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling at output stride 16: rates 1, 6, 12, 18 and the pooled image feature."""

    def __init__(self, cin: int = 2048, width: int = 256):
        super().__init__()
        self.aspp1, self.aspp2, self.aspp3, self.aspp4 = (Branch(cin, width, 1 if d == 1 else 3, d)
                                                          for d in (1, 6, 12, 18))
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(cin, width, 1))
        self.conv1, self.bn1 = nn.Conv2d(5 * width, width, 1, bias=False), nn.BatchNorm2d(width)

    def forward(self, x: Tensor) -> Tensor:
        branches = [b(x) for b in (self.aspp1, self.aspp2, self.aspp3, self.aspp4)]
        pooled = F.interpolate(self.global_avg_pool(x), size=x.shape[-2:], mode="bilinear", align_corners=True)
        return F.relu(self.bn1(self.conv1(torch.cat([*branches, pooled], 1))))


class Decoder(nn.Module):
    """DeepLab v3+'s decoder: ASPP output brought to the 1/4 features (48 channels of them) and two 3x3 convs."""

    def __init__(self, n_classes: int, low: int = 256, width: int = 256):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(low, 48, 1, bias=False), nn.BatchNorm2d(48)
        self.last_conv = nn.Sequential(*conv_bn_relu(width + 48, width, 3), nn.Dropout(0.5),
                                       *conv_bn_relu(width, width, 3), nn.Dropout(0.1),
                                       nn.Conv2d(width, n_classes, 1))

    def forward(self, x: Tensor, low: Tensor) -> Tensor:
        low = F.relu(self.bn1(self.conv1(low)))
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=True)
        return self.last_conv(torch.cat([x, low], 1))


class DeepLab(nn.Module):
    """[B, 3, H, W] -> [B, n_classes, H, W] (bilinear, corners aligned)."""

    def __init__(self, n_classes: int):
        super().__init__()
        from torchvision.models import resnet101

        self.backbone = resnet101(weights=None, replace_stride_with_dilation=[False, False, True])
        del self.backbone.fc, self.backbone.avgpool
        for block, rate in zip(self.backbone.layer4, (2, 4, 8), strict=True):  # the multi-grid unit: 1, 2, 4 x 2
            block.conv2.dilation, block.conv2.padding = (rate, rate), (rate, rate)
        self.aspp, self.decoder = ASPP(), Decoder(n_classes)

    def forward(self, x: Tensor) -> Tensor:
        b = self.backbone
        low = b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x)))))
        out = self.decoder(self.aspp(b.layer4(b.layer3(b.layer2(low)))), low)
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)
