"""What the validation-time callbacks share: a fixed validation subset, inverted once per validation from the
task's inputs `x` and scored against its targets `y` (under DDP, each rank inverts its share), and running every
few validations on every rank (rank 0 writes)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytorch_lightning as pl
import torch

from ganinv.distributed import gather, shard
from ganinv.inversion import Inversion


@dataclass
class SubsetInversion:
    """The first images of the validation split: inputs `x` (what the method sees), targets `y`, the inversion of `x`,
    their reconstructions (clamped) and the seconds that inverting took; computed at `iteration`."""

    iteration: int
    x: torch.Tensor
    y: torch.Tensor
    inversion: Inversion
    recs: torch.Tensor
    seconds: float

    def first(self, n: int) -> SubsetInversion:
        return SubsetInversion(self.iteration, self.x[:n], self.y[:n], self.inversion[:n], self.recs[:n],
                               self.seconds * min(n, len(self.x)) / max(len(self.x), 1))


_LAST: dict[int, SubsetInversion] = {}  # id(trainer) -> the latest inversion, shared by the callbacks


def invert_subset(trainer: pl.Trainer, module, n: int, batch_size: int = 16) -> SubsetInversion:
    """The first `n` validation images inverted by `module` (the same images at every evaluation), computed once
    per validation whichever callback asks first; under DDP each rank inverts its share and every rank gets all."""
    it = module.done()
    cached = _LAST.get(id(trainer))
    if cached is not None and cached.iteration == it and len(cached.x) >= n:
        return cached.first(n)
    dataset = trainer.datamodule.val_set
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    x = torch.stack([i["x"] for i in items]).to(module.device)
    y = torch.stack([i["y"] for i in items]).to(module.device)
    mine = shard(len(x), batch_size)
    if len(mine) == 0:
        raise ValueError(f"{len(x)} validation images cannot be shared by more processes: raise "
                         "callbacks.metrics.n_images and callbacks.images.n_images (and the validation split) to at "
                         "least one per process")
    codes, recs, seconds = [], [], 0.0
    with torch.no_grad():
        for k in range(mine.start, mine.stop, batch_size):
            start = time.perf_counter()
            codes.append(module.invert(x[k : min(k + batch_size, mine.stop)]))
            seconds += time.perf_counter() - start
            recs.append(module.reconstruct(codes[-1]).clamp(-1, 1))
    codes, recs = Inversion.cat(codes).map(gather), gather(torch.cat(recs))
    seconds = float(gather(torch.tensor([seconds])).sum())
    _LAST.clear()
    _LAST[id(trainer)] = SubsetInversion(it, x, y, codes, recs, seconds)
    return _LAST[id(trainer)]


class EveryValidations(pl.Callback):
    """Calls `run(trainer, module)` at the end of every `every`-th validation (0: never), on every rank (its
    collective work shared; files and loggers are rank 0's)."""

    def __init__(self, every: int = 1):
        self.every, self.validations = int(every), 0

    def on_validation_epoch_end(self, trainer: pl.Trainer, module) -> None:
        if trainer.sanity_checking or not self.every:
            return
        self.validations += 1
        if self.validations % self.every == 0:
            self.run(trainer, module)

    def run(self, trainer: pl.Trainer, module) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"validations": self.validations}

    def load_state_dict(self, state: dict) -> None:
        self.validations = int(state.get("validations", 0))
