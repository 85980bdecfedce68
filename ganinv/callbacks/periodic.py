"""What the validation-time callbacks share: a fixed validation subset, inverted once per validation from the
task's inputs `x` and scored against its targets `y` (under DDP, each rank inverts its share), and running every
few validations on every rank (rank 0 writes)."""

from __future__ import annotations

from dataclasses import dataclass

import pytorch_lightning as pl
import torch

from ganinv.metrics import Inverted, invert_images


@dataclass
class SubsetInversion:
    """The first validation images: inputs `x` (what the method sees), targets `y`, and `inverted` (`x`'s
    inversion, reconstructions and seconds), computed at `iteration`."""

    iteration: int
    x: torch.Tensor
    y: torch.Tensor
    inverted: Inverted

    def first(self, n: int) -> SubsetInversion:
        return SubsetInversion(self.iteration, self.x[:n], self.y[:n], self.inverted.first(n))


class ValidationSubset:
    """The first validation images, inverted once per validation for every callback that asks (built once and
    given to each): under DDP each rank inverts its share (`ganinv.metrics.invert_images`) and every rank gets
    all. `batch_size`: images per inversion call on each process."""

    def __init__(self, batch_size: int = 16):
        self.batch_size, self.latest = int(batch_size), None

    def inverted(self, trainer: pl.Trainer, module, n: int) -> SubsetInversion:
        it, latest = module.iterations_done(), self.latest
        if latest is not None and latest.iteration == it and len(latest.x) >= n:
            return latest.first(n)
        dataset = trainer.datamodule.val_set
        items = [dataset[i] for i in range(min(n, len(dataset)))]
        x = torch.stack([i["x"] for i in items]).to(module.device)
        y = torch.stack([i["y"] for i in items]).to(module.device)
        with torch.no_grad():
            self.latest = SubsetInversion(it, x, y, invert_images(module.invert, module.reconstruct, x,
                                                                  self.batch_size))
        return self.latest


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
