"""How well the toy nets do their jobs, measured on fresh renders (seeds never used in training)."""

from __future__ import annotations

import torch
from torch import Tensor

from .attributes import ATTRIBUTES, INDEX, NAMES, normalise, resample_editable, sample_attributes
from .render import render

EVAL_SEED = 900_000  # training draws seeds below this


@torch.no_grad()
def _batched(fn, x: Tensor, batch: int = 250) -> Tensor:
    return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def auc(pos: Tensor, neg: Tensor) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    scores = torch.cat([pos, neg])
    ranks = scores.argsort().argsort().double() + 1
    n_pos, n_neg = len(pos), len(neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def attribute_scores(net, n: int = 1000, seed: int = EVAL_SEED, resolution: int = 64) -> dict:
    """Mean absolute error per attribute on the [0, 1] scale, and glasses accuracy."""
    b = render(n, resolution, seed, frontal=False)
    pred = _batched(net, b.images)
    err = (normalise(pred) - normalise(b.attrs)).abs().mean(0)
    g = INDEX["glasses"]
    mae = {name: round(float(err[i]), 4) for i, name in enumerate(NAMES) if i != g}
    acc = float(((pred[:, g] > 0.5) == (b.attrs[:, g] > 0.5)).float().mean())
    return {"mae": mae, "mean_mae": round(sum(mae.values()) / len(mae), 4), "glasses_accuracy": round(acc, 4),
            "n": n, "seed": seed, "resolution": resolution}


@torch.no_grad()
def identity_scores(net, n: int = 400, seed: int = EVAL_SEED, resolution: int = 64) -> dict:
    """Same identity / new editable factors vs other identities: verification AUC and top-1 retrieval."""
    attrs = sample_attributes(n, seed)
    a = render(n, resolution, attrs=attrs, frontal=False).images
    b = render(n, resolution, attrs=resample_editable(attrs, seed + 1), frontal=False).images

    def measure(ea: Tensor, eb: Tensor) -> dict:
        sim = ea @ eb.T
        off = ~torch.eye(n, dtype=torch.bool)
        return {"auc": round(auc(sim.diag(), sim[off]), 4),
                "top1": round(float((sim.argmax(1) == torch.arange(n)).float().mean()), 4),
                "mean_sim_same": round(float(sim.diag().mean()), 4), "mean_sim_other": round(float(sim[off].mean()), 4)}

    def pixels(x: Tensor) -> Tensor:
        return torch.nn.functional.normalize(x.flatten(1) - x.flatten(1).mean(1, keepdim=True), dim=1)

    return {**measure(_batched(net, a), _batched(net, b)), "pixel_baseline": measure(pixels(a), pixels(b)),
            "n": n, "seed": seed, "resolution": resolution}


@torch.no_grad()
def perceptual_scores(net, n: int = 500, seed: int = EVAL_SEED, resolution: int = 64) -> dict:
    """Two-alternative forced choice: which of two perturbed faces is nearer the reference in attribute space?

    The reference's attributes are moved in random directions by a small and a large step; the net is right when
    its distance agrees with the attribute distance. Pixel L2 is the baseline.
    """
    g = torch.Generator().manual_seed(seed)
    ref = sample_attributes(n, g)
    low, high = torch.tensor([a.low for a in ATTRIBUTES]), torch.tensor([a.high for a in ATTRIBUTES])
    free = torch.ones(len(NAMES))
    free[INDEX["glasses"]] = 0  # a binary flip is not a small step
    cands = []
    for short, long in ((0.05, 0.2), (0.2, 0.45)):  # step lengths on the [0, 1] attribute scale
        step = torch.randn(ref.shape, generator=g) * free
        length = short + (long - short) * torch.rand(n, 1, generator=g)
        cands.append(torch.clamp(ref + step / step.norm(dim=1, keepdim=True) * length * (high - low), low, high))
    near_first = torch.rand(n, generator=g) < 0.5  # shuffle which candidate is the near one
    c0 = torch.where(near_first[:, None], cands[0], cands[1])
    c1 = torch.where(near_first[:, None], cands[1], cands[0])
    truth = (normalise(c0) - normalise(ref)).norm(dim=1) < (normalise(c1) - normalise(ref)).norm(dim=1)
    x, y0, y1 = (render(n, resolution, attrs=a, frontal=False).images for a in (ref, c0, c1))

    def accuracy(dist) -> float:
        d0 = torch.cat([dist(x[i : i + 250], y0[i : i + 250]) for i in range(0, n, 250)])
        d1 = torch.cat([dist(x[i : i + 250], y1[i : i + 250]) for i in range(0, n, 250)])
        return round(float(((d0 < d1) == truth).float().mean()), 4)

    return {"two_afc": accuracy(net), "two_afc_pixel_l2": accuracy(lambda a, b: (a - b).pow(2).mean((1, 2, 3))),
            "n": n, "seed": seed, "resolution": resolution}
