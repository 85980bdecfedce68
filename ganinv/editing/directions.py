"""Editing directions in W: GANSpace (Härkönen et al. 2020), SeFa (Shen & Zhou 2021), InterFaceGAN (Shen et al.
2020), as `Directions` saved with what they were computed from (generator hash, method, layers)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganinv.checkpoints import CheckpointError, atomic_save, load_torch_file, state_hash
from ganinv.stylegan2.layers import StyledConv


@dataclass
class Directions:
    """Unit directions [K, style_dim] in W, named, with a score each (eigenvalue, variance or accuracy) and the
    W+ layers they are meant for (None: every layer)."""

    vectors: torch.Tensor
    names: list[str]
    method: str
    scores: torch.Tensor
    layers: list[int] | None = None
    generator_hash: str | None = None
    meta: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.names:
            raise KeyError(f"no direction {name!r}; this file has {', '.join(self.names[:12])}"
                           + (" ..." if len(self.names) > 12 else ""))
        return self.vectors[self.names.index(name)]

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_save({"ganinv_directions": 1, "vectors": self.vectors.cpu(), "names": list(self.names),
                            "method": self.method, "scores": self.scores.cpu(), "layers": self.layers,
                            "generator_hash": self.generator_hash, "meta": dict(self.meta)}, path)


def load_directions(path: str | os.PathLike, generator: nn.Module | None = None) -> Directions:
    """Directions saved by `Directions.save`; with `generator`, refused unless computed from that generator."""
    raw = load_torch_file(path)
    if not isinstance(raw, dict) or "ganinv_directions" not in raw:
        raise CheckpointError(path, "is not a ganinv directions file.", "Compute one with ganinv-directions.")
    d = Directions(raw["vectors"], list(raw["names"]), raw["method"], raw["scores"], raw["layers"],
                   raw["generator_hash"], dict(raw.get("meta") or {}))
    if generator is not None and d.generator_hash and d.generator_hash != state_hash(generator):
        raise CheckpointError(path, "was computed for another generator (content hash differs).",
                              "Compute the directions for this generator with ganinv-directions.")
    return d


def style_layers(generator: nn.Module) -> dict[int, nn.Module]:
    """W+ index -> the modulated conv (StyledConv) that reads it (rosinality layout: conv1 reads 0, convs[i] i+1)."""
    return {0: generator.conv1, **{i + 1: conv for i, conv in enumerate(generator.convs)}}


@torch.no_grad()
def sefa(generator: nn.Module, layers: Sequence[int] | None = None) -> Directions:
    """SeFa's closed form: the eigenvectors of AᵀA, A the stacked modulation weights (rows normalised, as the
    official code does) of the chosen synthesis layers (all modulated convs by default), by eigenvalue."""
    table = style_layers(generator)
    chosen = sorted(table) if layers is None else list(layers)
    unknown = [i for i in chosen if i not in table]
    if unknown:
        raise ValueError(f"layers {unknown} have no modulated conv; choose among {sorted(table)}")
    a = torch.cat([_modulation_weight(table[i]) for i in chosen])  # [sum of in-channels, style_dim]
    a = F.normalize(a, dim=1)
    values, vectors = torch.linalg.eigh(a.T.double() @ a.double())
    order = values.argsort(descending=True)
    return Directions(vectors[:, order].T.float().contiguous(), [f"sefa_{k}" for k in range(len(order))], "sefa",
                      values[order].float(), chosen, state_hash(generator))


def _modulation_weight(conv: StyledConv) -> torch.Tensor:
    mod = conv.conv.modulation
    return mod.weight * getattr(mod, "scale", 1.0)


@torch.no_grad()
def ganspace(generator: nn.Module, n_samples: int = 100_000, seed: int = 0, n_components: int = 32,
             batch: int = 10_000) -> Directions:
    """GANSpace: principal directions of mapped w = f(z) over `n_samples` seeded z, by variance (scores: the
    standard deviation along each, in W units)."""
    gen = torch.Generator().manual_seed(seed)
    like = next(generator.parameters())  # the generator's device and precision
    w = torch.cat([generator.get_latent(torch.randn(min(batch, n_samples - i), generator.style_dim,
                                                    generator=gen).to(like)).cpu()
                   for i in range(0, n_samples, batch)]).double()
    w = w - w.mean(0)
    _, s, v = torch.linalg.svd(w, full_matrices=False)
    k = min(n_components, v.shape[0])
    std = s[:k] / (len(w) - 1) ** 0.5
    return Directions(v[:k].float().contiguous(), [f"pc_{i}" for i in range(k)], "ganspace", std.float(), None,
                      state_hash(generator), {"n_samples": n_samples, "seed": seed})


@torch.no_grad()
def interfacegan(generator: nn.Module, predictor: Callable[[torch.Tensor], torch.Tensor],
                 attribute: str | Sequence[str], n_samples: int = 10_000, ratio: float = 0.02, seed: int = 0,
                 batch: int = 64) -> Directions:
    """InterFaceGAN: a linear boundary in W between the samples scored highest and lowest (`ratio` of each) by
    `predictor(images) -> [B]`; the direction is its unit normal, pointing to higher scores (score: the boundary's
    accuracy on those samples). With a list of attributes, `predictor` returns [B, K], one column each, and the
    same samples give K directions."""
    names = [attribute] if isinstance(attribute, str) else list(attribute)
    gen = torch.Generator().manual_seed(seed)
    like = next(generator.parameters())  # the generator's device and precision
    ws, scores = [], []
    for i in range(0, n_samples, batch):
        z = torch.randn(min(batch, n_samples - i), generator.style_dim, generator=gen).to(like)
        with torch.no_grad():  # no graph kept alive by the stored codes and scores
            w = generator.get_latent(z)
            image, _ = generator([w], input_is_latent=True, randomize_noise=False)
            ws.append(w.cpu())
            scores.append(predictor(image.clamp(-1, 1)).float().cpu().reshape(len(w), len(names)))
    w, score = torch.cat(ws), torch.cat(scores)
    n = max(1, int(ratio * len(w)))
    normals, accuracies = [], []
    for k in range(len(names)):
        order = score[:, k].argsort()
        normal, accuracy = _linear_boundary(torch.cat([w[order[-n:]], w[order[:n]]]),
                                            torch.cat([torch.ones(n), torch.zeros(n)]))
        normals.append(normal)
        accuracies.append(accuracy)
    return Directions(torch.stack(normals), names, "interfacegan", torch.tensor(accuracies), None,
                      state_hash(generator), {"n_samples": n_samples, "ratio": ratio, "seed": seed})


def _linear_boundary(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3) -> tuple[torch.Tensor, float]:
    """L2-regularised logistic regression on standardised-by-mean codes (LBFGS): the unit normal, the accuracy."""
    mean = x.mean(0)
    xc = (x - mean).double()
    weight = torch.zeros(x.shape[1], dtype=torch.double, requires_grad=True)
    bias = torch.zeros((), dtype=torch.double, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(xc @ weight + bias, y.double()) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    accuracy = float(((xc @ weight + bias > 0).double() == y.double()).double().mean())
    return F.normalize(weight.detach(), dim=0).float(), accuracy
