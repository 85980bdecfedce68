"""`ImageGridCallback`: every few validations, targets | reconstructions of a fixed validation subset (inverted
from the task's inputs) as one PNG under `<run_dir>/images/` and, under W&B, as a logged image."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid, save_image

from ganinv.checkpoints import atomic_write

from .periodic import EveryValidations, ValidationSubset


class ImageGridCallback(EveryValidations):
    def __init__(self, run_dir: str, subset: ValidationSubset, every: int = 1, n_images: int = 8):
        super().__init__(every)
        self.run_dir, self.subset, self.n_images = Path(run_dir), subset, int(n_images)

    def run(self, trainer: pl.Trainer, module) -> None:
        sub = self.subset.inverted(trainer, module, self.n_images)
        if not trainer.is_global_zero:
            return
        y, rec = sub.y, sub.inverted.recs
        rec = torch.nn.functional.interpolate(rec, size=y.shape[-2:], mode="area") if rec.shape != y.shape else rec
        grid = make_grid(torch.cat([y, rec]) * 0.5 + 0.5, nrow=len(y), padding=2)
        path = self.run_dir / "images" / f"iteration_{module.iterations_done():06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: save_image(grid, f, format="png"))
        from pytorch_lightning.loggers import WandbLogger

        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image("eval/reconstructions", [grid], step=module.iterations_done() - 1,
                             caption=["top: targets, bottom: reconstructions"])
