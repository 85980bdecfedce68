"""`last.ckpt` written atomically every `every` iterations and at the last one, `best.ckpt` whenever the monitored
validation metric improves, plus the module's own exports."""

from __future__ import annotations

import math
import os
import signal
import warnings
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ganinv.distributed import largest, rank_disagreement
from ganinv.warn import GaninvWarning


class AtomicCheckpoint(pl.Callback):
    """Every `every` iterations and when `module.iteration` reaches `module.max_iterations`: `<dir>/last.ckpt`,
    replaced atomically, then `module.export(dir)` if the module has one (e.g. a generator and a sample grid).
    With `monitor` (e.g. "eval/mse"), `<dir>/best.ckpt` after each validation that improves it (`mode` min | max |
    auto: max for a higher-is-better metric).

    Saving after the training batch (not at train end) keeps the loops' mid-epoch state, so a resumed run continues
    with exactly the next batch; at an iteration that validates, after the validation, so that the checkpoint holds
    the callbacks' state after it (their histories, counters) and a resumed run neither repeats nor skips it. The
    final iteration is saved once. SIGTERM or SIGUSR2 end the batch in progress, save `last.ckpt` and stop training
    at once, without the validation Lightning would run on a stop (a scheduler's grace period is for the save; the
    evaluation belongs to the run that finishes): `stopped_by` says which signal, and `ganinv-train` exits 128 + it.
    """

    def __init__(self, out_dir: str | os.PathLike, every: int = 500, monitor: str | None = None, mode: str = "min"):
        if mode == "auto":
            from ganinv.callbacks.metrics import summary_of

            mode = summary_of(str(monitor).rpartition("/")[2])
        if mode not in ("min", "max"):
            raise ValueError(f"monitor mode {mode!r} is not one of min, max, auto")
        self.dir, self.every, self.monitor, self.mode = Path(out_dir), int(every), monitor, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.stopped_by: signal.Signals | None = None  # SIGTERM or SIGUSR2, once training stopped on it
        self.disagreement: float | None = None  # under DDP, measured at each save
        self.pending = False  # a save of last.ckpt waits for the end of this iteration's validation

    def on_train_start(self, trainer, module) -> None:
        # SIGTERM and SIGUSR2 are flagged here, in place of Lightning's SIGTERM handler (whose stop could come
        # between this callback's check and the end of the batch, unsaved): the batch in progress ends, then a save.
        def stop(signum, frame) -> None:
            self.stopped_by = signal.Signals(signum)

        self._previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, getattr(signal, "SIGUSR2", None))
                          if sig is not None}

    def on_train_end(self, trainer, module) -> None:
        if self.pending:  # a validation that was due did not run
            self.save_last(trainer, module)
        self.restore_handlers()

    def on_exception(self, trainer, module, exception) -> None:
        self.restore_handlers()

    def restore_handlers(self) -> None:
        for sig, handler in getattr(self, "_previous", {}).items():  # Lightning's, submitit's (checks.requeue)
            signal.signal(sig, handler)
        self._previous = {}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it = module.iterations_done()
        if trainer.received_sigterm and self.stopped_by is None:
            self.stopped_by = signal.SIGTERM
        if trainer.world_size > 1:  # a signal to one rank stops them all, at the same batch (the save is collective)
            stop = largest(int(self.stopped_by or 0))
            self.stopped_by = signal.Signals(stop) if stop else None
        if self.stopped_by is not None:
            self.save_last(trainer, module)
            # Lightning's own stop on SIGTERM: the fit ends here, on every rank (they agreed on the batch above),
            # before the validation that `trainer.should_stop` would start.
            raise SIGTERMException
        elif it % self.every == 0 or it >= module.max_iterations:
            if validates_at(trainer, it):  # after the validation: its callbacks' state is then in the checkpoint
                self.pending = True
            else:
                self.save_last(trainer, module)

    def save_last(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.pending = False
        self.save(trainer, module, "last.ckpt")
        if trainer.is_global_zero and hasattr(module, "export"):
            module.export(self.dir)

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        if value is not None and (float(value) < self.best if self.mode == "min" else float(value) > self.best):
            self.best = float(value)
            self.save(trainer, module, "best.ckpt")
        if self.pending or trainer.should_stop:  # also a training stopped at this validation (a pruned trial)
            self.save_last(trainer, module)

    def save(self, trainer: pl.Trainer, module: pl.LightningModule, name: str) -> None:
        if trainer.world_size > 1 and hasattr(module, "synced_parameters"):
            self.disagreement = rank_disagreement(module.synced_parameters())  # collective: every rank is here
            if self.disagreement > 0 and trainer.is_global_zero:
                warnings.warn(f"the ranks' weights differ by up to {self.disagreement:.3g} at iteration "
                              f"{module.iterations_done()}: {name} holds rank 0's. Something in the training step "
                              "runs differently per rank (docs/scaling.md).", GaninvWarning, stacklevel=1)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{name}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # collective under DDP: every rank calls it
        if trainer.is_global_zero:
            os.replace(tmp, self.dir / name)

    def on_save_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        if self.disagreement is not None:  # the largest difference between any rank's weights and rank 0's
            checkpoint.setdefault("ganinv", {})["rank_disagreement"] = self.disagreement
        rows = [lg.recent_rows() for lg in trainer.loggers if hasattr(lg, "recent_rows")]
        if rows:  # what the logger may not have written yet when the process dies
            checkpoint.setdefault("ganinv", {})["logged_rows"] = rows[0]

    def on_load_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        rows = checkpoint.get("ganinv", {}).get("logged_rows")
        for lg in trainer.loggers if rows else ():
            if hasattr(lg, "replay"):
                lg.replay([(int(step), row) for step, row in rows])

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state.get("best", self.best))


def validates_at(trainer: pl.Trainer, iteration: int) -> bool:
    """Whether the validation loop runs after this iteration's batch (`trainer.val_check_interval` iterations)."""
    every = trainer.val_check_batch
    return bool(trainer.enable_validation) and isinstance(every, int) and every > 0 and iteration % every == 0
