"""Training an inversion method with Lightning from a composed `train` config (what `ganinv-train` runs).

The run folder (`run_dir`) receives `config.yaml` (the resolved configuration), `checkpoints/last.ckpt` (every
`callbacks.checkpoint_every` iterations and at the last one; resumed exactly by the next run with the same
`run_dir`), `checkpoints/best.ckpt` (best `callbacks.monitor`), the logger's files and `train.log`. SIGTERM or
SIGUSR2 end the batch in progress, save `last.ckpt` and exit with 128 + the signal (143, 140), so a scheduler sees
an interrupted job; the same command continues it.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import torch

from ganinv.data.transforms import PROTOCOL_SIZE

log = logging.getLogger("ganinv")


def build(cfg):
    """(method module, datamodule) from a composed config: the generator, data and losses wired together."""
    from hydra.utils import instantiate

    from ganinv.methods import ConfigError, method_from_config
    from ganinv.metrics.suite import is_toy_generator

    generator = instantiate(cfg.generator)
    data_kwargs = {"generator": generator} if cfg.data.source == "generated" else {}
    # Unset sizes follow the generator: the official 256 px (pSp's face_pool of a 1024-px generator), or its own
    # size when smaller.
    size = min(PROTOCOL_SIZE, generator.size)
    data_kwargs |= {k: size for k in ("input_size", "target_size") if cfg.data.get(k) is None}
    target = cfg.data.get("target_size") or size
    if target != generator.size and is_toy_generator(generator):
        raise ConfigError(f"data.target_size={target} but the toy generator makes {generator.size}-px images, at "
                          "which the toy metrics compare: leave data.target_size unset (it follows the generator).")
    datamodule = instantiate(cfg.data, **data_kwargs)
    datamodule.setup("fit")  # bad folders and files are reported before any training starts
    model = method_from_config(cfg.method, generator, cfg.loss, input_nc=datamodule.input_channels,
                               input_size=datamodule.input_size, max_iterations=int(cfg.trainer.max_steps))
    if cfg.get("speed"):
        model.use_speed(**cfg.speed)
    return model, datamodule


@dataclass
class TrainedRun:
    """A finished `train`: its run folder and its record (`record.json`'s content: the best evaluation on
    `objective`, None when the metrics callback is off)."""

    run: Path
    record: dict | None = None

    def metric(self, name: str) -> float | None:
        value = (self.record or {}).get("metrics", {}).get(name)
        return None if value is None else float(value)


def train(cfg) -> TrainedRun:
    """Train from a composed config; resumes from `<run_dir>/checkpoints/last.ckpt` when `resume=auto`."""
    from omegaconf import OmegaConf
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from ganinv.callbacks import AtomicCheckpoint, InversionMetricsCallback
    from ganinv.distributed import start_failure
    from ganinv.methods import ConfigError

    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    model, datamodule, run, ckpt = prepare(cfg, trainer_cfg)
    trainer = make_run_trainer(cfg, trainer_cfg, run, model, datamodule, resumed=ckpt is not None)
    log.info("run folder %s%s", run, f", resuming from {ckpt}" if ckpt else "")
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    except SIGTERMException:  # Lightning's own stop after the batch; our checkpoint is already written
        pass
    except Exception as err:
        why = start_failure(err, str(trainer_cfg.get("accelerator"))) if trainer.world_size > 1 else None
        if why is None:
            raise
        launcher = getattr(trainer.strategy, "launcher", None)
        if hasattr(launcher, "kill"):  # the processes it started would wait for rank 0 until the timeout
            launcher.kill(signal.SIGKILL)
        raise ConfigError(why) from err
    stopped = next((c.stopped_by for c in trainer.callbacks if isinstance(c, AtomicCheckpoint)), None)
    finish_loggers(trainer, stopped)
    if stopped is not None:
        from ganinv.workflows.checks import requeue

        log.info("stopped by %s at iteration %d; %s holds it: the same command (resume=auto) continues", stopped.name,
                 int(model.iteration), run / "checkpoints" / "last.ckpt")
        requeue(stopped)  # in a submitit job: submitit requeues it (and exits)
        raise SystemExit(128 + int(stopped))
    log.info("finished at iteration %d; checkpoints in %s", int(model.iteration), run / "checkpoints")
    record = next((c.record for c in trainer.callbacks if isinstance(c, InversionMetricsCallback)), None)
    return TrainedRun(run, record)


def prepare(cfg, trainer_cfg: dict):
    """Checks, seeds and threads; the method and data built; the checkpoint to resume from (checked to be this
    run's); the resolved configuration written as `config.yaml`: (module, datamodule, run folder, checkpoint)."""
    import pytorch_lightning as pl
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from ganinv.checkpoints import atomic_write
    from ganinv.methods import ConfigError
    from ganinv.workflows.checks import job_problems
    from ganinv.workflows.trainer import (
        check_resources,
        check_same_run,
        check_trainer_options,
        quiet_lightning,
        resume_path,
    )

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if problems := job_problems(cfg, hydra):  # what a sweep's submission checked, checked again in the job
        raise ConfigError("\n".join(problems))
    check_trainer_options(trainer_cfg)
    quiet_lightning()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.set_float32_matmul_precision("high")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run = Path(cfg.run_dir)
    model, datamodule = build(cfg)
    check_resources(trainer_cfg, run, model)
    ckpt = resume_path(run / "checkpoints", str(cfg.resume), model)
    if ckpt is not None and str(cfg.resume) in ("auto", "last") and (run / "config.yaml").is_file():
        check_same_run(run / "config.yaml", OmegaConf.to_container(cfg, resolve=True))
    run.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(cfg, resolve=True)
    atomic_write(run / "config.yaml", lambda f: f.write(text.encode()))
    return model, datamodule, run, ckpt


def sweep_job() -> tuple[dict, str | None]:
    """In a multirun job (a grid, an Optuna trial): the values of the keys that vary in the sweep, and the sweep's
    folder; else ({}, None)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from ganinv.configs import job_overrides

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}, None
    parsed = OverridesParser.create().parse_overrides(job_overrides())
    return ({o.key_or_group.lstrip("+~"): o.value() for o in parsed if not o.is_delete()},
            str(HydraConfig.get().sweep.dir))


def make_run_trainer(cfg, trainer_cfg: dict, run: Path, model, datamodule, resumed: bool):
    """The trainer of a run: its logger (a resumed run continues its W&B run), checkpoints, and the validation
    callbacks — the validation subset, the metrics (`ganinv-eval`'s suite, built at the first evaluation) and the
    image grids."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from ganinv.callbacks import ValidationSubset
    from ganinv.metrics import build_suite
    from ganinv.metrics.names import objectives
    from ganinv.workflows.trainer import make_trainer

    swept, sweep = sweep_job()
    continued = {"resume": resumed} if cfg.logger and "resume" in cfg.logger else {}  # a logger that continues
    if sweep and cfg.logger and "group" in cfg.logger and cfg.logger.group is None:
        continued["group"] = sweep  # a sweep's runs: one W&B group
    logger = instantiate(cfg.logger, **continued) if cfg.logger and "_target_" in cfg.logger else False
    if logger:  # the run's whole recipe, and the values this job of a sweep was given as flat keys (W&B's
        # parallel coordinates and parameter importance read those)
        logger.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True), **swept})
    cb = cfg.callbacks
    # the first validation images as the validation loop inverted them, for both callbacks (listed after it)
    subset = ValidationSubset(max(int(cb.metrics.n_images), int(cb.images.n_images)), datamodule.val_batch_size)

    def suite():
        return build_suite(model.generator, instantiate(cfg.metrics), cfg.editability, str(cfg.fid),
                           datamodule.val_batch_size)

    names = objectives(cfg.objective)
    metrics = instantiate(cb.metrics, run_dir=str(run), suite=suite, subset=subset, objective=names,
                          distortion=cb.metrics.distortion or names[0], fields=run_fields(cfg, model),
                          _recursive_=False, _convert_="all")  # fields: as data
    extra = [subset, metrics, instantiate(cb.images, run_dir=str(run), subset=subset)]
    if os.environ.get("GANINV_TRIAL") is not None:  # a trial of an Optuna sweep: its curve, and pruning
        from ganinv.sweeps.pruning import TrialPruning

        extra.append(TrialPruning(metrics))
    monitor = str(cb.monitor or f"eval/{names[0]}")
    monitor = monitor if cb.metrics.every else monitor.replace("eval/", "val/", 1)
    trainer_cfg = {**trainer_cfg, "max_steps": -1}  # counted by the method in iterations (see conf/trainer/cpu.yaml)
    return make_trainer(trainer_cfg, run / "checkpoints", int(cb.checkpoint_every), logger, monitor,
                        cb.monitor_mode, int(cb.log_every), extra, model)


def finish_loggers(trainer, stopped) -> None:
    """One W&B run per job: closed here, so its files are complete and the next job in this process (a multirun)
    gets its own; a run stopped by a signal is marked preempting, so a W&B sweep re-queues it to an agent that
    continues it in its folder (runs/<method>/wandb-<run id>)."""
    from pytorch_lightning.loggers import WandbLogger

    for lg in trainer.loggers:
        if isinstance(lg, WandbLogger) and trainer.is_global_zero:
            if stopped is not None:
                lg.experiment.mark_preempting()
            lg.experiment.finish(exit_code=0 if stopped is None else 128 + int(stopped))


def run_fields(cfg, model) -> dict:
    """What a run's record says about the run: its experiment key (the resolved config without its seed, folders
    and watching), the config, the multirun overrides that name it (without `seed`), the generator and data."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from ganinv.metrics.records import experiment_key
    from ganinv.workflows.trainer import CONTINUABLE, flatten, under

    config = OmegaConf.to_container(cfg, resolve=True)
    watching = ("run_dir", "weights_dir", *(k for k in CONTINUABLE if k != "trainer.max_steps"))
    kept = {k: v for k, v in flatten(config).items() if not under(k, watching) and k.rpartition(".")[2] != "seed"}
    overrides = []
    if HydraConfig.initialized():
        overrides = [o for o in HydraConfig.get().overrides.task
                     if o.split("=")[0].lstrip("+~") not in ("seed", "run_dir", "resume", "threads")]
    return {"group": experiment_key(kept), "config": config, "overrides": " ".join(overrides),
            "seed": int(cfg.seed), "generator": {"hash": model.hparams["generator_hash"],  # hashed at build
                                                  "config": dict(getattr(model.generator, "config", {}))},
            "data": {"source": str(cfg.data.source)}}


def objective(cfg, trained: TrainedRun) -> float | list[float | None] | None:
    """What `ganinv-train` returns to a Hydra sweeper: the run's best value of `objective` (its record's), or with
    several objectives the value of each in the record (the run's last evaluation)."""
    from ganinv.metrics.names import objectives

    names = objectives(cfg.objective)
    values = [trained.metric(name) for name in names]
    return values if len(names) > 1 else values[0]
