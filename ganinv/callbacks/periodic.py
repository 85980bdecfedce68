"""What the validation-time callbacks share: a fixed validation subset with the validation loop's own inversions of
the task's inputs `x` (scored against its targets `y`), and running every few validations on every rank (rank 0
writes)."""

from __future__ import annotations

from dataclasses import dataclass

import pytorch_lightning as pl
import torch

from ganinv.distributed import gather
from ganinv.inversion import Inversion
from ganinv.metrics import Inverted, invert_images


@dataclass
class SubsetInversion:
    """The first validation images: inputs `x` (what the method sees), targets `y`, and `inverted` (`x`'s
    inversion, reconstructions and seconds), computed at `iteration`; `attrs`: the toy renderer's attributes, where
    the data set has them."""

    iteration: int
    x: torch.Tensor
    y: torch.Tensor
    inverted: Inverted
    attrs: torch.Tensor | None = None

    def first(self, n: int) -> SubsetInversion:
        return SubsetInversion(self.iteration, self.x[:n], self.y[:n], self.inverted.first(n),
                               None if self.attrs is None else self.attrs[:n])


class ValidationSubset(pl.Callback):
    """The first `n` validation images with their inversions, as the validation loop made them (each validation
    inverts every image once; `validation_step` returns its batch's rows): kept from each batch, gathered from
    every rank in index order at the validation's end (before the callbacks after it in the trainer's list read
    them). Where the loop did not reach them all (`limit_val_batches`), the subset is inverted here
    (`ganinv.metrics.invert_images`, batches of `batch_size` on each process)."""

    def __init__(self, n: int, batch_size: int = 16):
        self.n, self.batch_size, self.latest, self.rows = int(n), int(batch_size), None, []

    def on_validation_epoch_start(self, trainer: pl.Trainer, module) -> None:
        self.rows = []

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not isinstance(outputs, dict) or "inversion" not in outputs:
            return
        keep = batch["index"] < self.n
        if self.rows and not keep.any():  # the first batch is kept (maybe empty): the structure to gather
            return
        share = float(keep.sum()) / max(len(keep), 1)
        self.rows.append({"index": batch["index"][keep], "x": batch["x"][keep], "y": batch["y"][keep],
                          "inversion": outputs["inversion"][keep], "recs": outputs["recs"][keep],
                          "seconds": outputs["seconds"] * share,
                          **({"attrs": batch["attrs"][keep]} if "attrs" in batch else {})})

    def on_validation_epoch_end(self, trainer: pl.Trainer, module) -> None:
        rows, self.rows = self.rows, []
        if trainer.sanity_checking or not rows:
            return
        index = gather(torch.cat([r["index"] for r in rows]))
        first = {}  # DistributedSampler pads a rank's share with the first images again: each index once
        for k, i in enumerate(index.tolist()):
            first.setdefault(i, k)
        order = torch.tensor([first[i] for i in sorted(first)], dtype=torch.long, device=index.device)
        if len(order) < min(self.n, len(trainer.datamodule.val_set)):
            return  # the loop stopped short: `inverted` inverts the subset itself

        def whole(key: str) -> torch.Tensor:
            return gather(torch.cat([r[key] for r in rows]))[order.to(rows[0][key].device)]

        inversion = Inversion.cat([r["inversion"] for r in rows]).map(gather)[order.to(rows[0]["recs"].device)]
        seconds = float(gather(torch.tensor([sum(r["seconds"] for r in rows)])).sum())
        self.latest = SubsetInversion(module.iterations_done(), whole("x"), whole("y"),
                                      Inverted(0, inversion, whole("recs"), seconds),
                                      whole("attrs") if "attrs" in rows[0] else None)

    def inverted(self, trainer: pl.Trainer, module, n: int) -> SubsetInversion:
        """The first `n` (at most this subset's) validation images inverted at this iteration."""
        it, latest = module.iterations_done(), self.latest
        if latest is not None and latest.iteration == it and len(latest.x) >= min(n, len(trainer.datamodule.val_set)):
            return latest.first(n)
        dataset = trainer.datamodule.val_set
        items = [dataset[i] for i in range(min(max(n, self.n), len(dataset)))]
        x = torch.stack([i["x"] for i in items]).to(module.device)
        y = torch.stack([i["y"] for i in items]).to(module.device)
        attrs = torch.stack([i["attrs"] for i in items]).to(module.device) if "attrs" in items[0] else None
        with torch.no_grad():
            self.latest = SubsetInversion(it, x, y, invert_images(module.invert, module.reconstruct, x,
                                                                  self.batch_size), attrs)
        return self.latest.first(n)


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
