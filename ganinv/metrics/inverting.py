"""The one inversion loop of every evaluation (`ganinv-eval`, `ganinv-invert`, the training's callbacks): images
batch by batch -> inversions, clamped reconstructions and the seconds inverting took; sharded over the processes
in whole batches, each batch kept in `pieces` (when given) so that a killed job, run again, redoes only the batch
it was working on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from ganinv.distributed import gather, rank_and_world, shard
from ganinv.inversion import Inversion


@dataclass
class Inverted:
    """Rows `start`.. of a set: their inversion, reconstructions (clamped to [-1, 1]) and the seconds inverting
    them took (reconstructing excluded)."""

    start: int
    inversion: Inversion
    recs: Tensor
    seconds: float

    def first(self, n: int) -> Inverted:
        """The first `n` rows (their share of the seconds)."""
        k = min(n, len(self.recs))
        return Inverted(self.start, self.inversion[:k], self.recs[:k], self.seconds * k / max(len(self.recs), 1))


def invert_batches(invert: Callable[[Tensor], Inversion], reconstruct: Callable[[Inversion], Tensor],
                   images: Tensor | Callable[[int, int], Tensor], n: int, batch_size: int, share: bool = True,
                   pieces=None) -> Iterator[Inverted]:
    """Each batch of this process's share of `n` images (all of them unless `share`): `images` is a tensor or
    `load(start, stop)`; batches found in `pieces` (a `ganinv.checkpoints.pieces.Pieces`) are not inverted again."""
    rows = shard(n, batch_size) if share else range(n)
    for start in range(rows.start, rows.stop, batch_size):
        stop = min(start + batch_size, rows.stop)
        name = f"{start:09d}-{stop:09d}"
        piece = pieces.get(name) if pieces is not None else None
        if piece is None:
            x = images[start:stop] if isinstance(images, Tensor) else images(start, stop)
            began = time.perf_counter()
            inv = invert(x).detach()
            seconds = time.perf_counter() - began
            with torch.no_grad():
                recs = reconstruct(inv).detach().float().clamp(-1, 1)
            if pieces is not None:
                pieces.put(name, {"inversion": inv.cpu().state(), "recs": recs.cpu(), "seconds": seconds})
            yield Inverted(start, inv, recs, seconds)
        else:
            device = images.device if isinstance(images, Tensor) else "cpu"
            yield Inverted(start, Inversion.from_state(piece["inversion"]).to(device), piece["recs"].to(device),
                           float(piece["seconds"]))


def invert_images(invert: Callable[[Tensor], Inversion], reconstruct: Callable[[Inversion], Tensor], images: Tensor,
                  batch_size: int, pieces=None, advance: Callable[[], None] | None = None) -> Inverted:
    """Every image of `images` inverted (each process its share, `invert_batches`) and gathered on every process,
    the seconds summed over the processes. `advance` is called after each batch (a progress bar)."""
    if len(images) < rank_and_world()[1]:
        raise ValueError(f"{len(images)} images cannot be shared by {rank_and_world()[1]} processes: evaluate at "
                         "least one per process")
    parts = []
    for part in invert_batches(invert, reconstruct, images, len(images), batch_size, pieces=pieces):
        parts.append(part)
        if advance is not None:
            advance()
    seconds = float(gather(torch.tensor([sum(p.seconds for p in parts)])).sum())
    return Inverted(0, Inversion.cat([p.inversion for p in parts]).map(gather),
                    gather(torch.cat([p.recs for p in parts])), seconds)
