"""The Optuna sweeper's parts without training: the search space from Hydra's syntax, the directions from the
metrics, the trial count shared by workers, and a killed worker's trial failed and queued again."""

from __future__ import annotations

import time

import pytest

from ganinv.errors import ConfigError
from ganinv.sweeps.space import search_space
from ganinv.sweeps.study import (
    HEARTBEAT,
    REQUEUED_FROM,
    SKIPPED,
    ask_batch,
    counted,
    directions,
    open_study,
    requeue_stale,
)

optuna = pytest.importorskip("optuna", reason="the extra ganinv[sweeps]")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402


def test_hydra_sweep_syntax_becomes_optuna_distributions():
    space = search_space(["experiment=toy_e4e", "loss.weights.id=interval(0,0.5)",
                          "method.optimizer.lr=tag(log,interval(1e-5,1e-2))", "data.batch_size=tag(int,interval(2,16))",
                          "method.progressive_step_every=range(1,9,2)", "method.space=choice(w,w+)",
                          "method.encoder.widths=choice([8,8,12,16],[16,16,24,32])"])
    d = space.distributions
    assert d["loss.weights.id"] == FloatDistribution(0.0, 0.5)
    assert d["method.optimizer.lr"] == FloatDistribution(1e-5, 1e-2, log=True)
    assert d["data.batch_size"] == IntDistribution(2, 16)
    assert d["method.progressive_step_every"] == IntDistribution(1, 7, step=2)
    assert d["method.space"] == CategoricalDistribution(["w", "w+"])
    assert space.fixed == ["experiment=toy_e4e"]
    params = {"loss.weights.id": 0.25, "method.space": "w+", "method.encoder.widths": "[16,16,24,32]"}
    assert space.overrides(params) == ["experiment=toy_e4e", "loss.weights.id=0.25", "method.space=w+",
                                       "method.encoder.widths=[16,16,24,32]"]


@pytest.mark.parametrize("lines,expected", [
    (["seed=0"], "has no search space"),
    (["loss.weights.id=interval(0.5,0.1)"], "start must be below its end"),
    (["method=glob(*)"], "cannot sample"),
])
def test_a_space_optuna_cannot_sample_is_refused(lines, expected):
    with pytest.raises(ConfigError, match=expected):
        search_space(lines)


def test_directions_come_from_the_metrics_and_given_ones_must_agree():
    assert directions(["mse", "lec"], None) == ["minimize", "minimize"]
    assert directions(["psnr"], "maximize") == ["maximize"]
    with pytest.raises(ConfigError, match="direction=minimize but objective=psnr is better higher"):
        directions(["psnr"], "minimize")
    with pytest.raises(ConfigError, match=r"gives 1 direction\(s\) for 2 objective\(s\)"):
        directions(["mse", "lec"], "minimize")


def new_study(n_objectives: int = 1):
    goals = ["mse", "lec"][:n_objectives]
    return open_study("s", optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler(seed=0), None, goals,
                      None)


def test_workers_never_run_more_than_n_trials():
    study, space = new_study(), search_space(["loss.weights.id=interval(0,1)"])
    first = ask_batch(study, space, n_trials=3, n_jobs=2)
    second = ask_batch(study, space, n_trials=3, n_jobs=2)  # another worker: one trial left
    assert len(first) == 2 and len(second) == 1 and ask_batch(study, space, 3, 2) == []

    class Racing:  # a worker that asks when the room it counted was filled meanwhile by another worker
        def __init__(self, study):
            self.study = study

        def __getattr__(self, name):
            return getattr(self.study, name)

        def ask(self, distributions):
            self.study.ask(distributions)  # the other worker's trial comes first
            return self.study.ask(distributions)

    other = new_study()
    late = ask_batch(Racing(other), space, n_trials=1, n_jobs=1)
    assert late == [] and len(counted(other.trials)) == 1
    assert other.trials[1].state == TrialState.FAIL and SKIPPED in other.trials[1].user_attrs


def test_a_trial_whose_worker_died_is_failed_and_queued_again():
    study, space = new_study(), search_space(["loss.weights.id=interval(0,1)"])
    [alive, dead] = ask_batch(study, space, n_trials=2, n_jobs=2)
    alive.set_user_attr(HEARTBEAT, time.time())
    dead.set_user_attr(HEARTBEAT, time.time() - 100)
    dead.set_user_attr("run", "loss.weights.id=0.3")
    assert requeue_stale(study, grace_s=30) == [dead.number]
    assert requeue_stale(study, grace_s=30) == []  # once
    assert study.trials[dead.number].state == TrialState.FAIL and len(counted(study.trials)) == 1
    [again] = ask_batch(study, space, n_trials=2, n_jobs=2)  # the queued copy first, and only it
    assert again.params == dead.params and study.trials[again.number].user_attrs[REQUEUED_FROM] == dead.number
    assert study.trials[again.number].user_attrs["run"] == "loss.weights.id=0.3"  # continues in its folder
    assert len(counted(study.trials)) == 2 and ask_batch(study, space, 2, 2) == []


def test_a_study_of_other_objectives_is_not_reused():
    storage = optuna.storages.InMemoryStorage()
    open_study("s", storage, None, None, ["mse"], None)
    with pytest.raises(ConfigError, match="optimises 1 objective"):
        open_study("s", storage, None, None, ["mse", "lec"], None)
    with pytest.raises(ConfigError, match="optimises objective=\\['mse'\\], not \\['lec'\\]"):
        open_study("s", storage, None, None, ["lec"], None)


@pytest.mark.parametrize("stop,waiting", [(KeyboardInterrupt, 2), (SystemExit, 0)])
def test_a_sweep_stopped_mid_batch_leaves_no_trial_running(tmp_path, stop, waiting):
    """Ctrl-C: the batch's trials wait in the queue for the next start; a job that ended the process (a user
    error): its trials failed."""
    from omegaconf import OmegaConf

    from ganinv.sweeps.study import Heartbeat
    from ganinv.sweeps.sweeper import OptunaSweep

    class Stopping:
        def launch(self, overrides, initial_job_idx):
            raise stop

    study, space = new_study(), search_space(["loss.weights.id=interval(0,1)"])
    options = OmegaConf.create({"grace_s": 60, "heartbeat_s": 30, "max_failure_rate": 0.0})
    sweep = OptunaSweep(options, OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}), None, Stopping())
    beat = Heartbeat(30)
    with pytest.raises(stop):
        sweep.loop(study, space, ["mse"], n_trials=2, n_jobs=2, beat=beat)
    beat.close()
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states and states.count(TrialState.WAITING) == waiting
    assert states.count(TrialState.FAIL) == 2
