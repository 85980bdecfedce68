"""The work of `hydra/sweeper=optuna` (the Hydra plugin in `hydra_plugins.ganinv_optuna_sweeper` only hands over to
`OptunaSweep.run`): the search space from the command line, the study from its storage, then batches of trials
asked, launched through Hydra's launcher and told, until the study holds `n_trials`; last, the results
(`optimization_results.yaml`, `ganinv.sweeps.results`). Each trial's job learns its trial from
`GANINV_TRIAL` (its number), to report its validations to the pruner (`ganinv.sweeps.pruning`)."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from ganinv.errors import ConfigError
from ganinv.sweeps.study import (
    PRUNED_AT,
    RUN,
    Heartbeat,
    ask_batch,
    counted,
    open_storage,
    open_study,
    others_running,
    requeue,
    requeue_stale,
)

log = logging.getLogger("ganinv")


class OptunaSweep:
    """`options`: `hydra.sweeper`'s config; `config`: the multirun's whole config; `load_job`: overrides -> one
    job's config (Hydra's config loader); `launcher`: Hydra's launcher."""

    def __init__(self, options: Any, config: Any, load_job, launcher):
        self.options, self.config, self.load_job, self.launcher = options, config, load_job, launcher
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.job_idx = 0

    def run(self, arguments: list[str]):
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        from ganinv.metrics.names import objectives
        from ganinv.sweeps.results import write_results
        from ganinv.sweeps.space import search_space

        o = self.options
        params = [f"{k}={v}" for k, v in (o.get("params") or {}).items()]
        space = search_space([*params, *arguments])
        goals = objectives(self.load_job(space.fixed).objective)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        storage = open_storage(o.get("storage"), self.sweep_dir)
        sampler = instantiate(o.sampler) if o.get("sampler") else None
        pruner = instantiate(o.pruner) if o.get("pruner") else None
        study = open_study(str(o.study_name), storage, sampler, pruner, goals, o.get("direction"))
        for point in first_points(o.get("enqueue") or [], space):
            study.enqueue_trial(point, skip_if_exists=True)  # once: a restart or a second worker finds it there
        n_trials, n_jobs = int(o.n_trials), max(1, int(o.n_jobs))
        log.info("Optuna study %r (%s, %s): %d trials of %s, %d at a time; search space %s", study.study_name,
                 type(storage).__name__, ", ".join(d.name.lower() for d in study.directions), n_trials, goals,
                 n_jobs, {k: repr(v) for k, v in space.distributions.items()})
        beat = Heartbeat(float(o.heartbeat_s))
        try:
            self.loop(study, space, goals, n_trials, n_jobs, beat)
        finally:
            beat.close()
        return write_results(study, self.sweep_dir, goals, n_trials)

    def loop(self, study, space, goals: list[str], n_trials: int, n_jobs: int, beat: Heartbeat) -> None:
        from optuna.trial import TrialState

        failures, done = 0, 0
        while True:
            requeue_stale(study, float(self.options.grace_s))
            batch = ask_batch(study, space, n_trials, n_jobs)
            if not batch:
                if others_running(study, set()):  # other workers' trials: wait for them to end or go stale
                    time.sleep(float(self.options.heartbeat_s))
                    continue
                if len(counted(study.get_trials(deepcopy=False))) >= n_trials:
                    return
                continue  # a re-queued trial appeared meanwhile
            beat.running(batch)
            overrides = [space.overrides(t.params) + [f"++hydra.job.env_set.GANINV_TRIAL={t.number}"]
                         for t in batch]
            try:
                returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            except KeyboardInterrupt:  # stopped by hand: the trials wait in the queue for the next start
                for trial in batch:
                    requeue(study, trial)
                raise
            except BaseException:  # a job ended the process (a user error in it: its message is printed)
                for trial in batch:
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
            self.job_idx += len(batch)
            beat.running([])
            for trial, ret in zip(batch, returns):
                failed = self.tell(study, trial, ret, goals)
                failures, done = failures + failed, done + 1
                if failed and failures / done > float(self.options.max_failure_rate):
                    ret.return_value  # noqa: B018 - raises the job's error: the sweep stops with it

    def tell(self, study, trial, ret, goals: list[str]) -> bool:
        """Tells the study how a trial's job ended; True when it failed."""
        from omegaconf import OmegaConf
        from optuna.trial import TrialState

        folder = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg else None
        if folder:  # the job's run folder, relative to the sweep's
            trial.set_user_attr(RUN, os.path.relpath(folder, self.sweep_dir.absolute()))
        try:
            value = ret.return_value
        except Exception as e:  # noqa: BLE001 - the job's own error, raised again by the caller if it must
            log.error("trial %d failed: %s: %s", trial.number, type(e).__name__, e)
            study.tell(trial, state=TrialState.FAIL)
            return True
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if PRUNED_AT in study.get_trials(deepcopy=False)[trial.number].user_attrs:  # numbers index the trials
            study.tell(trial, state=TrialState.PRUNED)
            return False
        if len(values) != len(goals) or any(not isinstance(v, (int, float)) or math.isnan(v) for v in values):
            log.error("trial %d returned %s for objective=%s (no record? callbacks.metrics.every=0 writes none)",
                      trial.number, value, goals)
            study.tell(trial, state=TrialState.FAIL)
            return True
        study.tell(trial, values if len(values) > 1 else values[0])
        return False


def first_points(points: Any, space) -> list[dict]:
    """`hydra.sweeper.enqueue`: parameter sets to run first, each inside the search space."""
    out = []
    for point in points:
        point = dict(point)
        for key, value in point.items():
            dist = space.distributions.get(key)
            if dist is None:
                raise ConfigError(f"hydra.sweeper.enqueue: {key} is not in the search space "
                                  f"({', '.join(space.distributions)}).")
            try:
                inside = dist._contains(dist.to_internal_repr(value))
            except (ValueError, TypeError):
                inside = False
            if not inside:
                raise ConfigError(f"hydra.sweeper.enqueue: {key}={value} is outside its search space {dist!r}.")
        missing = set(space.distributions) - set(point)
        if missing:
            raise ConfigError(f"hydra.sweeper.enqueue: {point} leaves {', '.join(sorted(missing))} unset: give "
                              "every parameter of the search space.")
        out.append(point)
    return out


def check_options(options: Any) -> None:
    """The sweeper's own options, before any trial."""
    for key in ("n_trials", "n_jobs", "heartbeat_s", "grace_s"):
        if not float(options.get(key) or 0) > 0:
            raise ConfigError(f"hydra.sweeper.{key}={options.get(key)}: must be positive.")
    if float(options.grace_s) <= float(options.heartbeat_s):
        raise ConfigError(f"hydra.sweeper.grace_s={options.grace_s} must exceed hydra.sweeper.heartbeat_s="
                          f"{options.heartbeat_s} (a trial is stale after missing heartbeats).")
