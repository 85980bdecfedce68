"""Edits of W+ codes: a step along a direction on chosen layers, and interpolation between codes. Both take an
`Inversion` too: an edit moves its codes and keeps each image's generator state (noise, weight offsets,
residual), as PTI, HyperStyle and HFGI edit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch

from ganinv.inversion import Inversion

Codes = TypeVar("Codes", torch.Tensor, Inversion)


def edit(codes: Codes, direction: torch.Tensor, alpha: float | torch.Tensor,
         layers: Sequence[int] | None = None) -> Codes:
    """`codes + alpha · direction` on `layers` (every layer by default); codes [B, n_latent, dim] or [B, dim] (or
    an `Inversion`: its codes moved, the rest kept), `alpha` a number or one per code [B]."""
    if isinstance(codes, Inversion):
        return codes.replace(codes=edit(codes.codes, direction, alpha, layers))
    alpha = torch.as_tensor(alpha, dtype=codes.dtype, device=codes.device).reshape(-1, *([1] * (codes.ndim - 1)))
    step = alpha * direction.to(codes)
    if codes.ndim == 2 or layers is None:
        return codes + step
    mask = torch.zeros(codes.shape[1], 1, dtype=codes.dtype, device=codes.device)
    mask[list(layers)] = 1
    return codes + step * mask


def interpolate(a: Codes, b: Codes, steps: int) -> Codes:
    """`steps` codes from `a` to `b` (both included), linearly: [steps, *a.shape]; of two one-image inversions, an
    inversion of `steps` images whose every part (codes, noise, offsets, residual) moves from a's to b's."""
    if isinstance(a, Inversion):
        return a.pair(b, lambda x, y: interpolate(x[0], y[0], steps))
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).reshape(-1, *([1] * a.ndim))
    return a.unsqueeze(0) + t * (b - a).unsqueeze(0)
