"""Edits of W+ codes: a step along a direction on chosen layers, and interpolation between codes."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def edit(codes: torch.Tensor, direction: torch.Tensor, alpha: float | torch.Tensor,
         layers: Sequence[int] | None = None) -> torch.Tensor:
    """`codes + alpha · direction` on `layers` (every layer by default); codes [B, n_latent, dim] or [B, dim],
    `alpha` a number or one per code [B]."""
    alpha = torch.as_tensor(alpha, dtype=codes.dtype, device=codes.device).reshape(-1, *([1] * (codes.ndim - 1)))
    step = alpha * direction.to(codes)
    if codes.ndim == 2 or layers is None:
        return codes + step
    mask = torch.zeros(codes.shape[1], 1, dtype=codes.dtype, device=codes.device)
    mask[list(layers)] = 1
    return codes + step * mask


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` codes from `a` to `b` (both included), linearly: [steps, *a.shape]."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).reshape(-1, *([1] * a.ndim))
    return a.unsqueeze(0) + t * (b - a).unsqueeze(0)
