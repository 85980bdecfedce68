"""What every ganinv training entry point shares: resuming, a quiet Lightning, the Trainer with our callbacks."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from ganinv.callbacks import AtomicCheckpoint, IterationProgress, RNGState
from ganinv.checkpoints import check_training_checkpoint

# Lightning messages a ganinv user cannot act on: frozen networks are in eval mode on purpose, the progress is
# ours, and checkpoints are taken by iteration.
_QUIET = ("Found .* module\\(s\\) in eval mode", "The number of training batches .* is smaller than the logging",
          "You passed in a `val_dataloader` but have no `validation_step`", "`isinstance\\(treespec, LeafSpec\\)`",
          "Total length of .* across ranks is zero", "does not have many workers which may be a bottleneck",
          "You're resuming from a checkpoint that ended before the epoch ended")  # StyleGAN2DataModule resumes
_QUIET_LOGS = ("💡 Tip:", "`weights_only` was not set")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_QUIET_LOGS)


def quiet_lightning() -> None:
    """Silence the Lightning warnings and tips listed above (and only those)."""
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", pattern)
    for name in ("pytorch_lightning", "lightning.pytorch", "pytorch_lightning.utilities.rank_zero",
                 "pytorch_lightning.trainer.connectors.checkpoint_connector"):
        logging.getLogger(name).addFilter(_DropTips())


def resume_path(out_dir: Path, resume: str, module: pl.LightningModule) -> str | None:
    """The checkpoint to resume from (checked against `module`), or None to start afresh.

    `resume`: auto (`<out_dir>/last.ckpt` when present), last (it must be present), never, or a path."""
    last = out_dir / "last.ckpt"
    if resume == "never" or resume == "auto" and not last.exists():
        return None
    path = last if resume in ("auto", "last") else Path(resume)
    return str(check_training_checkpoint(path, module))


def make_trainer(trainer_cfg: dict[str, Any], out_dir: Path, checkpoint_every: int, logger: Any,
                 monitor: str | None = None, mode: str = "min", log_every: int = 50,
                 extra: list[pl.Callback] | None = None) -> pl.Trainer:
    """A Trainer counted in iterations, with our atomic checkpoints in `out_dir` (`best.ckpt` by `monitor`),
    RNG state, iteration progress bar and the `extra` callbacks."""
    cfg = dict(trainer_cfg)
    show = bool(cfg.pop("enable_progress_bar", True))
    callbacks = [AtomicCheckpoint(out_dir, checkpoint_every, monitor, mode), RNGState(),
                 IterationProgress(log_every, show=show), *(extra or [])]
    return pl.Trainer(**cfg, default_root_dir=str(out_dir), enable_checkpointing=False, enable_progress_bar=False,
                      logger=logger, callbacks=callbacks)
