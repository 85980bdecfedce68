"""What the validation-time callbacks share: a fixed validation subset, and running every few validations on
rank 0 only."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


def fixed_subset(trainer: pl.Trainer, n: int) -> torch.Tensor:
    """The first `n` validation targets (the same images at every evaluation and on every rank)."""
    dataset = trainer.datamodule.val_set
    return torch.stack([dataset[i]["y"] for i in range(min(n, len(dataset)))])


class EveryValidations(pl.Callback):
    """Calls `run(trainer, module)` at the end of every `every`-th validation (0: never), on global rank 0."""

    def __init__(self, every: int = 1):
        self.every, self.validations = int(every), 0

    def on_validation_epoch_end(self, trainer: pl.Trainer, module) -> None:
        if trainer.sanity_checking or not self.every:
            return
        self.validations += 1
        if self.validations % self.every == 0 and trainer.global_rank == 0:
            self.run(trainer, module)

    def run(self, trainer: pl.Trainer, module) -> None:
        raise NotImplementedError
