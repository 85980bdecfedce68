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
          "You're resuming from a checkpoint that ended before the epoch ended",  # StyleGAN2DataModule resumes
          # DDP: a backward pass of e4e's latent discriminator gives its last Linear's weight [1, C] a gradient with
          # stride 1 along the size-1 dimension, where the bucket has C: the same memory layout, copied into the
          # bucket (C numbers). Only that shape is silenced; any other stride mismatch is still shown.
          r"Grad strides do not match bucket view strides[\s\S]*grad\.sizes\(\) = \[1, \d+\], strides\(\) = \[1, 1\]")
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


# What may change when a run is continued: its budget and how it is watched, never what it trains.
CONTINUABLE = ("trainer.max_steps", "resume", "threads", "logger", "trainer.enable_progress_bar",
               "trainer.enable_model_summary", "callbacks.log_every")


def flatten(d: dict | None, prefix: str = "") -> dict:
    """A nested config as {"a.b.c": value}."""
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        out |= flatten(v, key + ".") if isinstance(v, dict) and v else {key: v}
    return out


def under(key: str, keys) -> bool:
    """Whether `key` is one of `keys` or inside one of them."""
    return any(key == c or key.startswith(c + ".") for c in keys)


def check_same_run(saved: Path, config: dict) -> None:
    """Refuse to continue the run whose resolved `saved` config.yaml differs from `config` in anything but
    `CONTINUABLE` keys: one error naming the differing keys and the way out."""
    from omegaconf import OmegaConf

    from ganinv.checkpoints import CheckpointError

    before, now = flatten(OmegaConf.to_container(OmegaConf.load(saved))), flatten(config)
    differ = sorted(k for k in set(before) | set(now) if before.get(k, "<unset>") != now.get(k, "<unset>")
                    and not under(k, CONTINUABLE))
    if differ:
        shown = ", ".join(f"{k} ({before.get(k, '<unset>')!r} there, {now.get(k, '<unset>')!r} now)"
                          for k in differ[:4]) + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")
        raise CheckpointError(saved.parent, f"holds another run: its config differs in {shown}.",
                              "Continue it with its own settings (only trainer.max_steps may grow), or start "
                              "afresh with resume=never or another run_dir.")


def check_resources(trainer_cfg: dict[str, Any], run_dir: Path, module: pl.LightningModule) -> None:
    """Before training: the GPUs asked for exist, and the run folder's disk holds a checkpoint (the module's state
    plus three optimiser buffers per trained parameter, Ranger's most) twice, as an atomic replace needs."""
    import shutil

    import torch

    from ganinv.methods import ConfigError

    devices, accelerator = trainer_cfg.get("devices", 1), str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and isinstance(devices, int) and devices > torch.cuda.device_count():
        raise ConfigError(f"trainer.devices={devices} but this machine has {torch.cuda.device_count()} GPU(s): ask "
                          "for fewer, or trainer.accelerator=cpu for CPU processes (gloo).")
    state = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    trained = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
    need = 2 * (state + 3 * trained)
    existing = run_dir.absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < need:
        raise ConfigError(f"run_dir={run_dir}: {free / 2**20:.0f} MiB free on its disk, but writing a checkpoint "
                          f"needs about {need / 2**20:.0f} MiB (twice, while it replaces the last one): free space or "
                          "choose another run_dir.")


def check_trainer_options(trainer_cfg: dict[str, Any]) -> None:
    """Every `trainer.*` key is an argument of Lightning's Trainer (else one error with the closest one), and
    gradient accumulation is off."""
    import difflib
    import inspect

    from ganinv.methods import ConfigError

    known = set(inspect.signature(pl.Trainer).parameters) - {"self", "callbacks", "logger", "default_root_dir"}
    if int(trainer_cfg.get("accumulate_grad_batches") or 1) != 1:
        raise ConfigError(f"trainer.accumulate_grad_batches={trainer_cfg['accumulate_grad_batches']}: gradient "
                          "accumulation is not supported: an iteration is one global batch (data.batch_size), every "
                          "schedule counts them, and e4e, ReStyle, In-Domain and HyperStyle step their optimisers "
                          "themselves (Lightning accumulates only for automatic optimisation). For a global batch "
                          "larger than one device holds, train on more processes (trainer.devices, "
                          "trainer.num_nodes).")
    for key in trainer_cfg:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise ConfigError(f"trainer.{key} is not an option of Lightning's Trainer"
                              + (f"; did you mean trainer.{close[0]}?" if close else "."))


def make_trainer(trainer_cfg: dict[str, Any], out_dir: Path, checkpoint_every: int, logger: Any,
                 monitor: str | None = None, mode: str = "min", log_every: int = 50,
                 extra: list[pl.Callback] | None = None, module: pl.LightningModule | None = None) -> pl.Trainer:
    """A Trainer counted in iterations, with our atomic checkpoints in `out_dir` (`best.ckpt` by `monitor`),
    RNG state, iteration progress bar and the `extra` callbacks.

    `strategy: ddp` searches for unused parameters only where `module` says it must; `sync_batchnorm: true`
    normalises over the global batch on CPU processes too (`module`'s BatchNorms become `GlobalBatchNorm`s;
    torch's SyncBatchNorm on GPUs)."""
    import torch
    from pytorch_lightning.plugins.environments import SLURMEnvironment
    from pytorch_lightning.strategies import DDPStrategy

    from ganinv.distributed import use_global_batchnorm

    cfg = dict(trainer_cfg)
    show = bool(cfg.pop("enable_progress_bar", True))
    if cfg.get("strategy") == "ddp":
        cfg["strategy"] = DDPStrategy(find_unused_parameters=bool(getattr(module, "find_unused_parameters", True)))
    accelerator = cfg.get("accelerator", "auto")
    on_cpu = accelerator == "cpu" or accelerator == "auto" and not torch.cuda.is_available()
    if cfg.get("sync_batchnorm") and on_cpu and module is not None:  # torch's SyncBatchNorm needs GPUs
        cfg["sync_batchnorm"] = False
        use_global_batchnorm(module)
    if SLURMEnvironment.detect():  # submitit requeues (ganinv.workflows.checks): Lightning's own requeue stays out
        cfg["plugins"] = [*cfg.get("plugins", []), SLURMEnvironment(auto_requeue=False)]
    callbacks = [AtomicCheckpoint(out_dir, checkpoint_every, monitor, mode), RNGState(),
                 IterationProgress(log_every, show=show), *(extra or [])]
    return pl.Trainer(**cfg, default_root_dir=str(out_dir), enable_checkpointing=False, enable_progress_bar=False,
                      logger=logger, callbacks=callbacks)
