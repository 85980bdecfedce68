"""An Optuna study whose trials are `ganinv-train` jobs started by Hydra's launcher (`hydra/sweeper=optuna`).

The study lives in shared storage — a journal file, `<sweep dir>/study.log` by default, or any database URL Optuna
takes — so several workers (the same command started N times, or N SLURM jobs) draw trials of one study until it
holds `n_trials`. Each worker asks up to `n_jobs` trials at a time and launches them as one batch. While a trial
runs, its worker stamps a heartbeat on it; a trial whose heartbeat is older than `grace_s` (its worker was killed)
is marked failed and **re-queued** with the same parameters, so the next worker to ask runs it again — in the same
run folder (named after the parameters), where training continues from the killed run's last checkpoint. Trials
that finished are never run again; the same command started again continues the study to `n_trials`.

Trial user attributes: `run` (the run folder, relative to the sweep folder), `heartbeat`, `requeued_from` (the
number of the killed trial a re-queued one repeats), `skipped` (why a trial was asked but never launched: a
surplus past `n_trials` when workers ask at once) and `pruned_at` (the iteration a pruned trial stopped at)."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from ganinv.errors import ConfigError
from ganinv.metrics.names import direction_of, objectives

log = logging.getLogger("ganinv")
HEARTBEAT, REQUEUED_FROM, SKIPPED, RUN = "heartbeat", "requeued_from", "skipped", "run"
PRUNED_AT = "pruned_at"  # set by a pruned trial's job: the iteration it stopped at


def open_storage(storage: str | None, sweep_dir: Path):
    """Optuna storage: a journal file (`storage` null: `<sweep dir>/study.log`; a path) or a database URL."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if storage and "://" in storage:
        try:
            return optuna.storages.RDBStorage(storage)
        except Exception as e:  # noqa: BLE001 - SQLAlchemy's errors, a missing driver
            raise ConfigError(f"hydra.sweeper.storage={storage} cannot be opened ({type(e).__name__}: "
                              f"{str(e).splitlines()[0]}): give a reachable database URL, or a journal file path "
                              "(null: <sweep dir>/study.log).") from None
    path = journal(storage, sweep_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as e:
        raise ConfigError(f"hydra.sweeper.storage={path}: the journal file cannot be written ({e.strerror}).") from None
    # the open-lock (O_EXCL) works on the network file systems of clusters, where symlinks may not
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def journal(storage: str | None, sweep_dir: Path) -> Path:
    """The journal file of `hydra.sweeper.storage` (not a database URL): the path given, else the sweep's."""
    return Path(storage) if storage else sweep_dir / "study.log"


def storage_problem(storage: str | None, sweep_dir: Path) -> str | None:
    """Why `hydra.sweeper.storage` cannot be opened, found without creating anything (None when it can)."""
    import os

    def unwritable(path: Path) -> bool:
        existing = path.absolute()
        while not existing.exists():
            existing = existing.parent
        return not (existing.is_dir() and os.access(existing, os.W_OK))

    if storage and "://" in storage and not storage.startswith("sqlite:"):
        try:
            from sqlalchemy import create_engine

            create_engine(storage).connect().close()
        except Exception as e:  # noqa: BLE001 - SQLAlchemy's errors, a missing driver
            return (f"hydra.sweeper.storage={storage} cannot be opened ({type(e).__name__}: "
                    f"{str(e).splitlines()[0]}): give a reachable database URL, or a journal file path.")
        return None
    path = Path(storage.split(":///", 1)[1]) if storage and "://" in storage else journal(storage, sweep_dir)
    if unwritable(path.parent):
        return f"hydra.sweeper.storage={storage or path}: {path.parent} cannot be written: choose another place."
    return None


def directions(goals: list[str], given: Any) -> list[str]:
    """One direction per objective: each metric's own way (lower MSE, higher PSNR); `given` directions must be
    those."""
    want = [direction_of(name) for name in goals]
    if given is None:
        return want
    got, fix = objectives(given), want[0] if len(want) == 1 else "[" + ",".join(want) + "]"
    if len(got) != len(goals):
        raise ConfigError(f"hydra.sweeper.direction={given} gives {len(got)} direction(s) for {len(goals)} "
                          f"objective(s) {goals}: set hydra.sweeper.direction={fix}, or null (from the metrics).")
    wrong = [(name, d, w) for name, d, w in zip(goals, got, want) if d != w]
    if wrong:
        name, d, w = wrong[0]
        raise ConfigError(f"hydra.sweeper.direction={d} but objective={name} is better "
                          f"{'higher' if w == 'maximize' else 'lower'}: set hydra.sweeper.direction={fix}.")
    return got


def open_study(name: str, storage, sampler, pruner, goals: list[str], given_direction: Any):
    """The study called `name` in `storage`, created on first use; a study of other objectives is refused."""
    import optuna

    dirs = directions(goals, given_direction)
    if pruner is not None and len(goals) > 1:
        raise ConfigError(f"hydra.sweeper.pruner: Optuna cannot prune a multi-objective study (objective={goals}): "
                          "set hydra/sweeper/pruner=none, or one objective.")
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner, directions=dirs,
                                load_if_exists=True)
    if [d.name.lower() for d in study.directions] != dirs:
        raise ConfigError(f"the study {name!r} in this storage optimises {len(study.directions)} objective(s) "
                          f"({[d.name.lower() for d in study.directions]}), not objective={goals}: give another "
                          "hydra.sweep.dir or hydra.sweeper.study_name.")
    known = study.user_attrs.get("objectives")
    if known is not None and known != goals:
        raise ConfigError(f"the study {name!r} optimises objective={known}, not {goals}: give another "
                          "hydra.sweep.dir or hydra.sweeper.study_name.")
    if known is None:
        study.set_user_attr("objectives", goals)
        with warnings.catch_warnings():  # experimental in Optuna, and only a label
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(goals)  # what the dashboard calls the values
    return study


def counted(trials: list) -> list:
    """The trials that count towards `n_trials`: all but those never launched, those waiting in the queue, and the
    killed trials that were re-queued (their repeat counts instead)."""
    from optuna.trial import TrialState

    requeued = {t.user_attrs.get(REQUEUED_FROM) for t in trials}
    return [t for t in trials if SKIPPED not in t.user_attrs and t.number not in requeued
            and t.state != TrialState.WAITING]


def requeue_stale(study, grace_s: float) -> list[int]:
    """Running trials whose heartbeat stopped more than `grace_s` seconds ago: each is marked failed and its
    parameters queued again (by whichever worker gets there first). Returns their numbers."""
    from optuna.trial import TrialState

    now, out = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = t.user_attrs.get(HEARTBEAT, t.datetime_start.timestamp() if t.datetime_start else now)
        if now - beat > grace_s and requeue(study, t):
            log.warning("trial %d stopped beating %.0f s ago (its worker was killed?): failed, and its parameters "
                        "queued again", t.number, now - beat)
            out.append(t.number)
    return out


def requeue(study, trial) -> bool:
    """A running trial marked failed and its parameters (and run folder) queued again; False when another worker
    had already ended it."""
    from optuna.trial import TrialState

    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except (RuntimeError, ValueError):
        return False
    runs = study.get_trials(deepcopy=False)[trial.number].user_attrs  # as the job left them (its run folder)
    study.enqueue_trial(trial.params, user_attrs={REQUEUED_FROM: trial.number,
                                                  **({RUN: runs[RUN]} if RUN in runs else {})})
    return True


class Heartbeat:
    """Stamps the time on the trials a worker runs, every `every` seconds, from a thread."""

    def __init__(self, every: float):
        self.every, self.trials, self.stop = float(every), [], threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="ganinv-heartbeat")
        self.thread.start()

    def running(self, trials: list) -> None:
        with self.lock:
            self.trials = list(trials)
        self._stamp()

    def _stamp(self) -> None:
        with self.lock:
            for t in self.trials:
                try:
                    t.set_user_attr(HEARTBEAT, time.time())
                except Exception:  # noqa: BLE001 - a finished trial (told meanwhile)
                    pass

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            self._stamp()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=self.every + 1)


def ask_batch(study, space, n_trials: int, n_jobs: int) -> list:
    """Up to `n_jobs` new trials (queued ones first), none past `n_trials` counted trials: a trial asked when
    other workers had already filled the study is marked skipped and told failed."""
    from optuna.trial import TrialState

    room = n_trials - len(counted(study.get_trials(deepcopy=False)))
    batch = []
    for _ in range(max(0, min(n_jobs, room))):
        trial = study.ask(space.distributions)
        before = [t for t in counted(study.get_trials(deepcopy=False)) if t.number < trial.number]
        if len(before) >= n_trials:
            trial.set_user_attr(SKIPPED, f"the study already held n_trials={n_trials} when it was asked")
            study.tell(trial, state=TrialState.FAIL)
            break
        batch.append(trial)
    return batch


def others_running(study, mine: set[int]) -> bool:
    from optuna.trial import TrialState

    return any(t.number not in mine for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
