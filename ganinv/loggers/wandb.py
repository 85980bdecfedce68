"""Weights & Biases: online when the user is logged in, offline otherwise (files under the run folder, synced
later with `wandb sync`); `WANDB_MODE` overrides. No ganinv command needs the network."""

from __future__ import annotations

import netrc
import os
import secrets
import string
import time
from pathlib import Path

import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from ganinv.checkpoints import atomic_write


def logged_in() -> bool:
    """An API key in $WANDB_API_KEY or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC", Path.home() / ".netrc")).authenticators(
            os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1])
    except (OSError, netrc.NetrcParseError):
        return False
    return auth is not None


def wandb_mode(mode: str = "auto") -> str:
    """online | offline | disabled; `auto`: $WANDB_MODE, else online when logged in, else offline."""
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"wandb mode {mode!r} is not one of auto, online, offline, disabled")
    if mode != "auto":
        return mode
    return os.environ.get("WANDB_MODE") or ("online" if logged_in() else "offline")


def wandb_logger(save_dir: str, project: str = "ganinv", entity: str | None = None, group: str | None = None,
                 tags: list[str] | None = None, name: str | None = None, mode: str = "auto", resume: bool = False):
    """A `ContinuedWandbLogger` (rank 0 only under DDP, as Lightning loggers are) in the chosen mode; `resume`:
    the training run continues from a checkpoint, and so does its W&B run."""
    save_dir = str(Path(save_dir).absolute())  # W&B's service may run in another folder (a parent process's)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    chosen = wandb_mode(mode)
    logger = ContinuedWandbLogger(save_dir, resume, project=project, entity=entity, group=group,
                                  tags=list(tags or []), name=name, offline=chosen == "offline",
                                  mode=chosen if chosen == "disabled" else None)
    # Lightning always passes `anonymous`, a setting wandb >= 0.19 ignores and warns about on every run.
    logger._wandb_init.pop("anonymous", None)
    return logger


class ContinuedWandbLogger(WandbLogger):
    """Lightning's `WandbLogger` whose W&B run continues with the training run. Rows are logged at W&B step =
    iterations done (Lightning's 0-based step + 1, also `trainer/global_step`), so every row of an iteration is
    one W&B row. A continued run (`resume`) logs to the same W&B run (its id kept in `<save_dir>/wandb/run-id`)
    from the step after the last one that run holds (the server's, online; its offline files', offline): a run
    killed after its last checkpoint redoes some iterations, with the same values, and W&B keeps each once.

    W&B writes its data asynchronously (offline, to disk every `flush_seconds`), so a kill loses the last rows
    it was given: the scalar rows of the last `KEEP_SECONDS` travel in each checkpoint (`recent_rows`), and a
    continued run first logs those that W&B lacks (`replay`)."""

    KEEP_SECONDS = 120.0

    def __init__(self, save_dir: str, resume: bool, flush_seconds: float = 1.0, **kwargs):
        import wandb

        self.folder = Path(save_dir) / "wandb"
        ids = self.folder / "run-id"
        run_id = ids.read_text().strip() if ids.is_file() and (resume or rank_zero_only.rank != 0) else None
        if run_id is None:  # rank 0 of a new run (a W&B sweep agent names it); the other ranks read its id
            run_id = os.environ.get("WANDB_RUN_ID") or "".join(
                secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(ids, lambda f: f.write(run_id.encode()))
        self.run_id, self._first, self._recent = run_id, None, []
        flush = "x_transaction_log_flush_interval"  # a recent wandb setting: older ones keep their own
        settings = {flush: float(flush_seconds)} if hasattr(wandb.Settings(), flush) else {}
        super().__init__(save_dir=save_dir, id=run_id, resume="allow", settings=settings, **kwargs)

    def recent_rows(self) -> list[tuple[int, dict]]:
        """(step, scalars) of the rows logged in the last `KEEP_SECONDS`."""
        now = time.monotonic()
        self._recent = [r for r in self._recent if now - r[0] <= self.KEEP_SECONDS]
        return [(step, row) for _, step, row in self._recent]

    @rank_zero_only
    def replay(self, rows: list[tuple[int, dict]]) -> None:
        """Log the rows of a checkpoint (`recent_rows`) that the W&B run lacks."""
        for step, row in rows:
            if self.logs(step):
                self.experiment.log({**row, "trainer/global_step": step}, step=step)
                self._recent.append((time.monotonic(), step, row))  # until W&B surely has it

    def logs(self, iteration: int) -> bool:
        """Whether rows of `iteration` go to W&B: not those the run already holds."""
        if self._first is None:
            from ganinv.loggers.wandb_files import last_offline_step

            held = last_offline_step(self.folder, self.run_id) + 1
            self._first = max(int(getattr(self.experiment, "step", 0) or 0), held)
        return iteration >= self._first

    @rank_zero_only
    def log_metrics(self, metrics, step: int | None = None) -> None:
        if step is None:
            super().log_metrics(metrics)
        elif self.logs(step + 1):
            self.experiment.log({**metrics, "trainer/global_step": step + 1}, step=step + 1)
            scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))
                       or torch.is_tensor(v) and v.numel() == 1}
            if scalars:
                self._recent.append((time.monotonic(), step + 1, scalars))


def init_run(save_dir: str, project: str = "ganinv", entity: str | None = None, group: str | None = None,
             tags: list[str] | None = None, name: str | None = None, mode: str = "auto", config: dict | None = None,
             job_type: str | None = None):
    """A plain `wandb.init` run (for `ganinv-eval`), in the same mode rules."""
    import wandb

    save_dir = str(Path(save_dir).absolute())  # W&B's service may run in another folder (a parent process's)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return wandb.init(project=project, entity=entity, group=group, tags=list(tags or []), name=name,
                      dir=save_dir, mode=wandb_mode(mode), config=config, job_type=job_type, reinit="finish_previous")
