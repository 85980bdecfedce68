"""StyleGAN2 low-level ops in pure PyTorch (no compiled extension): FIR resampling and the biased leaky ReLU."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)


def make_kernel(k: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Normalised 2-D FIR kernel; a 1-D kernel is made separable by its outer product."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with `kernel`, downsample (same pad on both axes).

    Numerically the reference `upfirdn2d_native`: a true convolution (flipped kernel), applied per channel.
    """
    b, c, h, w = x.shape
    if up > 1:  # zero insertion: each pixel followed by up-1 zeros along both axes
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:  # negative padding crops
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


def fused_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = LRELU_SLOPE, scale: float = LRELU_GAIN
) -> torch.Tensor:
    """`leaky_relu(x + bias) * sqrt(2)`, bias broadcast over dim 1 (channels / features)."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale
