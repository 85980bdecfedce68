"""`last.ckpt` written atomically every `every` iterations and at the last one, plus the module's own exports."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl


class AtomicCheckpoint(pl.Callback):
    """Every `every` iterations and when `module.iteration` reaches `module.max_iterations`: `<dir>/last.ckpt`,
    replaced atomically, then `module.export(dir)` if the module has one (e.g. a generator and a sample grid).

    Saving after the training batch (not at train end) keeps the loops' mid-epoch state, so a resumed run continues
    with exactly the next batch; the final iteration is saved once.
    """

    def __init__(self, out_dir: str | os.PathLike, every: int = 500):
        self.dir, self.every = Path(out_dir), int(every)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it = int(module.iteration)
        if it % self.every == 0 or it >= module.max_iterations:
            self.save(trainer, module)

    def save(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        tmp = self.dir / ".last.ckpt.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # collective under DDP: every rank calls it
        if not trainer.is_global_zero:
            return
        os.replace(tmp, self.dir / "last.ckpt")
        if hasattr(module, "export"):
            module.export(self.dir)
