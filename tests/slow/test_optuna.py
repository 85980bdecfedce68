"""ganinv's Optuna sweeper (`hydra/sweeper=optuna`) end to end on tiny toy trainings: one objective, two (the
Pareto front against a brute-force front of the records), two workers on one journal study, a worker killed with
SIGKILL and the same command started again, and pruning."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.runs import SWEEP_TINY
from tests.wandb_files import wandb_offline_run

optuna = pytest.importorskip("optuna", reason="the extra ganinv[sweeps]")
pytestmark = pytest.mark.slow


def command(sweep: Path, *args: str) -> list[str]:
    logger = [] if any(a.startswith("logger=") for a in args) else ["logger=none"]
    return [sys.executable, "-m", "ganinv.commands.train", "-m", "experiment=toy_psp", "hydra/sweeper=optuna",
            f"hydra.sweep.dir={sweep}", *logger, *SWEEP_TINY, *args]


def sweep(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """The sweep run from its own folder (not the checkout's, whose `hydra_plugins` folder Hydra would find)."""
    return subprocess.run(command(tmp, *args), capture_output=True, text=True, timeout=600, cwd=tmp)


def results(tmp: Path) -> dict:
    return yaml.safe_load((tmp / "optimization_results.yaml").read_text())


def records(tmp: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in tmp.glob("*/record.json")}


def study(tmp: Path):
    from ganinv.sweeps.study import open_storage

    return optuna.load_study(study_name=str(tmp), storage=open_storage(None, tmp))


def test_one_objective_minimises_what_ganinv_train_returns(tmp_path):
    done = sweep(tmp_path, "hydra.sweeper.n_trials=3", "loss.weights.perceptual=interval(0.1,1.0)", "logger=wandb",
                 "logger.mode=offline")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = records(tmp_path)
    assert len(runs) == 3 and len({r["config"]["loss"]["weights"]["perceptual"] for r in runs.values()}) == 3
    out = results(tmp_path)
    best = min(runs, key=lambda name: runs[name]["metrics"]["mse"])
    assert out["objectives"] == ["mse"] and out["directions"] == ["minimize"] and out["states"] == {"complete": 3}
    assert out["best_value"] == pytest.approx(runs[best]["metrics"]["mse"]) and out["best_run"] == best
    assert out["best_params"]["loss.weights.perceptual"] == pytest.approx(
        runs[best]["config"]["loss"]["weights"]["perceptual"])
    # each trial's run folder is named after its sampled value alone, and the results name the folders
    assert all(f.startswith("loss.weights.perceptual=") and "," not in f for f in runs), sorted(runs)
    assert sorted(t["run"] for t in out["trials"]) == sorted(runs)
    assert [t["values"]["mse"] for t in out["trials"]] == sorted(r["metrics"]["mse"] for r in runs.values())
    assert out["front"][0]["checkpoint"].endswith(f"{best}/checkpoints/best.ckpt")
    assert (tmp_path / "study.log").is_file() and len(study(tmp_path).trials) == 3
    for name, record in runs.items():  # W&B: the sampled value as a flat config key, the sweep as the group
        logged = wandb_offline_run(next((tmp_path / name / "wandb").rglob("run-*.wandb")))
        assert logged["config"]["loss.weights.perceptual"] == record["config"]["loss"]["weights"]["perceptual"]
        assert logged["group"] == str(tmp_path)


def test_a_direction_against_the_objective_is_refused(tmp_path):
    done = sweep(tmp_path, "hydra.sweeper.n_trials=1", "hydra.sweeper.direction=minimize", "objective=psnr",
                 "loss.weights.perceptual=interval(0.1,1.0)")
    assert done.returncode == 2 and not list(tmp_path.iterdir())  # refused before any trial
    assert "hydra.sweeper.direction=minimize but objective=psnr" in done.stderr and "maximize" in done.stderr


def dominated(p: tuple, q: tuple) -> bool:
    """q beats p: no worse on every (minimised) value, better on one."""
    return all(b <= a for a, b in zip(p, q)) and any(b < a for a, b in zip(p, q))


def test_two_objectives_end_with_the_pareto_front_of_the_records(tmp_path):
    done = sweep(tmp_path, "hydra.sweeper.n_trials=5", "objective=[mse,lec]", "hydra/sweeper/sampler=random",
                 "loss.weights.perceptual=interval(0.0,1.0)", "loss.weights.l2=interval(0.1,2.0)")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = records(tmp_path)
    points = {name: (r["metrics"]["mse"], r["metrics"]["lec"]) for name, r in runs.items()}
    brute = {name for name, p in points.items() if not any(dominated(p, q) for q in points.values())}
    out = results(tmp_path)
    assert out["objectives"] == ["mse", "lec"] and out["directions"] == ["minimize", "minimize"]
    assert {t["run"] for t in out["front"]} == brute and len(runs) == 5
    for t in out["trials"]:  # each trial's values are its record's: the run's last evaluation, in last.ckpt
        assert (t["values"]["mse"], t["values"]["lec"]) == pytest.approx(points[t["run"]])
        assert runs[t["run"]]["selected"] == {"objective": ["mse", "lec"], "summary": "last"}
        assert runs[t["run"]]["iteration"] == runs[t["run"]]["last"]["iteration"]
    assert all(t["checkpoint"].endswith("checkpoints/last.ckpt") for t in out["front"])
    # the sweep's leaderboard flags its front
    board = subprocess.run([sys.executable, "-m", "ganinv.commands.leaderboard", f"input={tmp_path}",
                            f"output={tmp_path / 'board'}", "distortion=mse", "editability=lec"],
                           capture_output=True, text=True, timeout=300)
    assert board.returncode == 0, board.stderr[-2000:]
    with open(tmp_path / "board" / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    assert {Path(r["run_dirs"]).name for r in rows if r["sweep_front"] == "1"} == brute
    assert "sweep front" in (tmp_path / "board" / "leaderboard.md").read_text()


def test_two_workers_share_one_journal_study_and_end_with_the_front_of_its_records(tmp_path):
    args = command(tmp_path, "hydra.sweeper.n_trials=4", "objective=[mse,lec]",
                   "loss.weights.perceptual=interval(0.1,1.0)", "loss.weights.l2=interval(0.1,2.0)")
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    said = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], said[0][-2000:] + said[1][-2000:]
    trials = [t for t in study(tmp_path).trials if "skipped" not in t.user_attrs]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(trials) == 4
    assert len({t.user_attrs["run"] for t in complete}) == 4 and len(records(tmp_path)) == 4  # one folder each
    assert all("Optuna study" in s and "Launching 1 jobs" in s for s in said)  # both worked on it
    out = results(tmp_path)
    points = {name: (r["metrics"]["mse"], r["metrics"]["lec"]) for name, r in records(tmp_path).items()}
    brute = {name for name, p in points.items() if not any(dominated(p, q) for q in points.values())}
    assert out["states"] == {"complete": 4} and {t["run"] for t in out["front"]} == brute


def test_a_killed_worker_is_requeued_and_the_same_command_finishes_the_study(tmp_path):
    args = command(tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.heartbeat_s=0.5",
                   "hydra.sweeper.grace_s=3", "trainer.max_steps=30", "callbacks.checkpoint_every=2",
                   "trainer.val_check_interval=10", "loss.weights.perceptual=interval(0.1,1.0)")
    worker = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    killed, finished_before = None, {}
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and worker.poll() is None:
        time.sleep(0.2)
        if not (tmp_path / "study.log").is_file():
            continue
        trials = study(tmp_path).trials
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and "run" in t.user_attrs]
        # (a running trial's job names its run folder as it starts)
        if done and running and (tmp_path / running[0].user_attrs["run"] / "checkpoints" / "last.ckpt").is_file():
            finished_before = {t.number: (tmp_path / t.user_attrs["run"] / "record.json").stat().st_mtime_ns
                               for t in done}
            os.killpg(worker.pid, signal.SIGKILL)
            killed = running[0]
    worker.wait(timeout=60)
    assert killed is not None, "the worker never had a finished trial and a running one with a checkpoint"
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = study(tmp_path).trials
    by_number = {t.number: t for t in trials}
    assert by_number[killed.number].state == optuna.trial.TrialState.FAIL  # killed: failed, then queued again
    repeat = [t for t in trials if t.user_attrs.get("requeued_from") == killed.number]
    assert len(repeat) == 1 and repeat[0].state == optuna.trial.TrialState.COMPLETE
    assert repeat[0].params == killed.params and repeat[0].user_attrs["run"] == killed.user_attrs["run"]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3 and len({t.user_attrs["run"] for t in complete}) == 3  # nothing done twice
    for number, mtime in finished_before.items():  # trials finished before the kill were not run again
        assert by_number[number].state == optuna.trial.TrialState.COMPLETE
        assert (tmp_path / by_number[number].user_attrs["run"] / "record.json").stat().st_mtime_ns == mtime
    log = (tmp_path / repeat[0].user_attrs["run"] / "train.log").read_text()
    assert "continuing from" in log.lower() or "resum" in log.lower(), log[-2000:]  # in the killed run's folder
    assert results(tmp_path)["states"] == {"complete": 3, "fail": 1}


def test_a_trial_behind_the_median_is_pruned_and_keeps_its_folder(tmp_path):
    done = sweep(tmp_path, "hydra.sweeper.n_trials=2", "hydra/sweeper/pruner=median",
                 "hydra.sweeper.pruner.n_startup_trials=1", "trainer.max_steps=20", "trainer.val_check_interval=5",
                 "method.optimizer.lr=choice(0.001,0.0)", "hydra.sweeper.enqueue=[{method.optimizer.lr:0.001},"
                 "{method.optimizer.lr:0.0}]")
    assert done.returncode == 0, done.stderr[-3000:]
    out = results(tmp_path)
    states = {t["params"]["method.optimizer.lr"]: t["state"] for t in out["trials"]}
    assert states == {0.001: "complete", 0.0: "pruned"}
    pruned = next(t for t in out["trials"] if t["state"] == "pruned")
    record = json.loads((tmp_path / pruned["run"] / "record.json").read_text())
    assert record["pruned"]["iteration"] < 20 and not record["finished"]
    assert (tmp_path / pruned["run"] / "checkpoints" / "last.ckpt").is_file()
    board = subprocess.run([sys.executable, "-m", "ganinv.commands.leaderboard", f"input={tmp_path}"],
                           capture_output=True, text=True, timeout=300)
    assert "1 trial(s) pruned by their sweep, not ranked" in board.stdout and pruned["run"] in board.stdout
    curves = {t.params["method.optimizer.lr"]: t.intermediate_values for t in study(tmp_path).trials}
    assert sorted(curves[0.001]) == [5, 10, 15, 20] and max(curves[0.0]) == record["pruned"]["iteration"]


def test_a_batch_of_trials_runs_as_slurm_jobs_through_the_launcher(tmp_path):
    """n_jobs trials at a time through hydra/launcher=slurm_local (submitit's local executor: an array of jobs,
    as on a cluster); each job reports to its own trial (it names its run folder in the study as it starts)."""
    done = sweep(tmp_path, "hydra/launcher=slurm_local", "trainer=slurm", "trainer.accelerator=cpu",
                 "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2", "loss.weights.perceptual=interval(0.1,1.0)")
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    trials = study(tmp_path).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert sorted(t.user_attrs["run"] for t in trials) == sorted(records(tmp_path))
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)  # each validation, from the job
    assert list(tmp_path.glob(".submitit/*"))  # submitted through submitit
