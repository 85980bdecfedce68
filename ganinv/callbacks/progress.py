"""A Rich progress bar counted in iterations toward `max_iterations` (with a real ETA), and the same progress
written to the `ganinv` log every `log_every` iterations, so a run's log file says how it went."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger("ganinv")


class SpeedColumn(ProgressColumn):
    """Iterations per second over the recent window."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:.2f} it/s" if task.speed else "-- it/s")


class IterationProgress(pl.Callback):
    """Replaces Lightning's epoch bar: `module.iteration` of `module.max_iterations`, it/s, ETA, the last losses."""

    def __init__(self, log_every: int = 50, show: bool = True):
        self.log_every, self.show = int(log_every), show
        self.bar: Progress | None = None
        self.task = None

    def on_train_start(self, trainer, module) -> None:
        start, total = module.iterations_done(), int(module.max_iterations)
        log.info("training %s from iteration %d to %d", type(module).__name__, start, total)
        if self.show and trainer.is_global_zero:
            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), SpeedColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                TextColumn("{task.fields[metrics]}"))
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=start, metrics="")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        it = module.iterations_done()
        metrics = {k.split("/")[-1]: float(v) for k, v in trainer.progress_bar_metrics.items()}
        text = " ".join(f"{k} {v:.3g}" for k, v in metrics.items())
        if self.bar is not None:
            self.bar.update(self.task, completed=it, metrics=text)
        if trainer.is_global_zero and (it % self.log_every == 0 or it >= module.max_iterations):
            log.info("iteration %d/%d %s", it, module.max_iterations, text)

    def on_train_end(self, trainer, module) -> None:
        self._stop()

    def on_exception(self, trainer, module, exception) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
