"""`last.ckpt` written atomically every `every` iterations and at the last one, `best.ckpt` whenever the monitored
validation metric improves, plus the module's own exports."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytorch_lightning as pl


class AtomicCheckpoint(pl.Callback):
    """Every `every` iterations and when `module.iteration` reaches `module.max_iterations`: `<dir>/last.ckpt`,
    replaced atomically, then `module.export(dir)` if the module has one (e.g. a generator and a sample grid).
    With `monitor` (e.g. "val/mse"), `<dir>/best.ckpt` after each validation that improves it (`mode` min | max).

    Saving after the training batch (not at train end) keeps the loops' mid-epoch state, so a resumed run continues
    with exactly the next batch; the final iteration is saved once.
    """

    def __init__(self, out_dir: str | os.PathLike, every: int = 500, monitor: str | None = None, mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"monitor mode {mode!r} is not one of min, max")
        self.dir, self.every, self.monitor, self.mode = Path(out_dir), int(every), monitor, mode
        self.best = math.inf if mode == "min" else -math.inf

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it = int(module.iteration)
        if it % self.every == 0 or it >= module.max_iterations:
            self.save(trainer, module, "last.ckpt")
            if trainer.is_global_zero and hasattr(module, "export"):
                module.export(self.dir)

    def on_validation_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        if value is None or trainer.sanity_checking:
            return
        value = float(value)
        if value < self.best if self.mode == "min" else value > self.best:
            self.best = value
            self.save(trainer, module, "best.ckpt")

    def save(self, trainer: pl.Trainer, module: pl.LightningModule, name: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{name}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # collective under DDP: every rank calls it
        if trainer.is_global_zero:
            os.replace(tmp, self.dir / name)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state.get("best", self.best))
