"""Losses on latent codes: pSp's w-norm, e4e's delta regularisation, supervised codes of generated samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def w_norm(codes: torch.Tensor, latent_avg: torch.Tensor | None = None) -> torch.Tensor:
    """pSp's W-norm: L2 norm of (codes - latent_avg) over all layers and dims, batch mean.

    `latent_avg` ([dim] or [n_styles, dim]) is subtracted when the encoder starts from the average code.
    """
    if latent_avg is not None:
        codes = codes - latent_avg.to(codes)
    return codes.flatten(1).norm(2, dim=1).mean()


def delta_regularization(codes: torch.Tensor, stage: int | None = None, p: float = 2) -> torch.Tensor:
    """e4e's L_d-reg: sum over layers i of the batch-mean p-norm of w_i - w_0.

    Like the official training, with a progressive `stage` only the offsets 1 .. stage-1 (already trained) are
    penalised; `stage=None` penalises every layer.
    """
    n = codes.shape[1]
    upto = n if stage is None else min(stage, n)
    total = codes.new_zeros(())
    for i in range(1, upto):
        total = total + torch.linalg.vector_norm(codes[:, i] - codes[:, 0], ord=p, dim=1).mean()
    return total


def code_loss(codes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Supervised MSE to known codes of generated samples; a [B, dim] target is broadcast to every layer."""
    if target.ndim == 2 and codes.ndim == 3:
        target = target.unsqueeze(1).expand_as(codes)
    return F.mse_loss(codes, target)
