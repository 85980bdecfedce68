"""A trial's side of an Optuna sweep: inside a job the sweeper launched (`GANINV_TRIAL` names its trial), each
evaluation of the metrics callback reports the objective to the trial — the study's learning curves, which the
pruner (`hydra.sweeper.pruner`) reads to stop a trial that is behind the others at the same iteration. A stopped
run keeps its folder and checkpoints; its record says `pruned: {"iteration": ...}` and the sweeper marks the trial
pruned. Optuna reports and prunes one objective only: a multi-objective study gets no curves."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytorch_lightning as pl

from ganinv.sweeps.study import PRUNED_AT, RUN, open_storage

log = logging.getLogger("ganinv")


def job_trial():
    """The Optuna trial of this Hydra job and the sweep's folder ((None, None) outside a sweep of
    `hydra/sweeper=optuna`)."""
    number = os.environ.get("GANINV_TRIAL")
    if number is None:
        return None, None
    import optuna
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    if not HydraConfig.initialized():
        return None, None
    hydra = HydraConfig.get()
    sweeper = hydra.sweeper
    pruner = instantiate(sweeper.pruner) if sweeper.get("pruner") else optuna.pruners.NopPruner()
    study = optuna.load_study(study_name=str(sweeper.study_name), pruner=pruner,
                              storage=open_storage(sweeper.get("storage"), Path(str(hydra.sweep.dir))))
    frozen = study.get_trials(deepcopy=False)[int(number)]  # a study's trials are listed by number
    return optuna.trial.Trial(study, frozen._trial_id), Path(str(hydra.sweep.dir)).absolute()


class TrialPruning(pl.Callback):
    """After each evaluation of `metrics` (an `InversionMetricsCallback`, listed before this callback), reports
    its objective at that iteration to the job's trial (rank 0 holds it) and stops the training when the pruner
    says so (every rank stops: rank 0's decision is broadcast)."""

    def __init__(self, metrics):
        self.metrics, self.trial, self.reported = metrics, None, 0

    def setup(self, trainer: pl.Trainer, module, stage: str) -> None:
        if trainer.is_global_zero and self.trial is None:
            self.trial, sweep_dir = job_trial()
            if self.trial is not None:  # the study knows where a running trial trains (the dashboard shows it)
                self.trial.set_user_attr(RUN, os.path.relpath(self.metrics.run_dir.absolute(), sweep_dir))

    def on_validation_epoch_end(self, trainer: pl.Trainer, module) -> None:
        if trainer.sanity_checking or not self.metrics.history:
            return
        row = self.metrics.history[-1]
        if row["iteration"] <= self.reported:
            return
        self.reported, prune = row["iteration"], False
        if self.trial is not None and len(self.metrics.objectives) == 1:
            self.trial.report(float(row[self.metrics.objectives[0]]), step=int(row["iteration"]))
            prune = self.trial.should_prune()
        if not trainer.strategy.broadcast(prune, src=0):
            return
        trainer.should_stop = True
        if self.trial is not None:
            self.trial.set_user_attr(PRUNED_AT, int(row["iteration"]))
        self.metrics.pruned(trainer, int(row["iteration"]))
        log.info("iteration %d: pruned (the trial is behind the study's others at this iteration)", row["iteration"])
