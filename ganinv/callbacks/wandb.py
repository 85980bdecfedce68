"""Weights & Biases: online when the user is logged in, offline otherwise (files under the run folder, synced
later with `wandb sync`); `WANDB_MODE` overrides. No ganinv command needs the network."""

from __future__ import annotations

import netrc
import os
from pathlib import Path


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
                 tags: list[str] | None = None, name: str | None = None, mode: str = "auto"):
    """Lightning's `WandbLogger` (rank 0 only under DDP, as Lightning loggers are) in the chosen mode."""
    from pytorch_lightning.loggers import WandbLogger

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    chosen = wandb_mode(mode)
    logger = WandbLogger(project=project, entity=entity, group=group, tags=list(tags or []), name=name,
                         save_dir=save_dir, offline=chosen == "offline", mode=chosen if chosen == "disabled" else None)
    # Lightning always passes `anonymous`, a setting wandb >= 0.19 ignores and warns about on every run.
    logger._wandb_init.pop("anonymous", None)
    return logger


def init_run(save_dir: str, project: str = "ganinv", entity: str | None = None, group: str | None = None,
             tags: list[str] | None = None, name: str | None = None, mode: str = "auto", config: dict | None = None,
             job_type: str | None = None):
    """A plain `wandb.init` run (for `ganinv-eval`), in the same mode rules."""
    import wandb

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return wandb.init(project=project, entity=entity, group=group, tags=list(tags or []), name=name,
                      dir=save_dir, mode=wandb_mode(mode), config=config, job_type=job_type, reinit="finish_previous")
