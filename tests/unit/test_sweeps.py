"""Sweeps without a server: every W&B sweep file is valid against ganinv's config and metrics, and one sampled
configuration, expanded as `wandb agent` expands it, runs (the multirun leaderboard: tests/slow/test_multirun.py)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from ganinv.configs import CONF
from tests.runs import SWEEP_TINY
from tests.wandb_files import wandb_offline_run

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))
EVAL_METRICS = ("mse", "psnr", "ssim", "perceptual", "id_sim", "lec", "edit_gain", "p_norm")


def sample(parameters: dict, rng: random.Random) -> dict:
    """One configuration the sweep could run (the first grid point; a draw from each distribution)."""
    out = {}
    for name, spec in parameters.items():
        if "values" in spec:
            out[name] = spec["values"][0]
        elif "value" in spec:
            out[name] = spec["value"]
        elif spec.get("distribution", "uniform") in ("uniform", "log_uniform_values"):
            out[name] = rng.uniform(spec["min"], spec["max"])
        else:
            raise AssertionError(f"{name}: no sampler for {spec}")
    return out


def agent_command(sweep: dict, params: dict) -> list[str]:
    """The command `wandb agent` runs for `params`: its own macro expansion (wandb.sdk.launch.sweeps.utils)."""
    from wandb.sdk.launch.sweeps import utils

    command = utils.create_sweep_command(list(sweep["command"]))
    variables = utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    variables |= {"env": ["/usr/bin/env"], "interpreter": ["python"], "program": [sweep["program"]]}
    out = []
    for c in map(str, command):
        out += variables.get(c[2:-1], []) if c.startswith("${") and c.endswith("}") else [c]
    return out


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_files_name_what_ganinv_has(path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in ("grid", "random", "bayes") and sweep["program"] == "ganinv-train"
    assert sweep["metric"]["goal"] in ("minimize", "maximize")
    prefix, _, metric = sweep["metric"]["name"].partition("/")
    assert prefix == "eval" and metric in EVAL_METRICS, sweep["metric"]
    from ganinv.callbacks.metrics import summary_of

    assert {"min": "minimize", "max": "maximize"}[summary_of(metric)] == sweep["metric"]["goal"]
    assert "${args_no_hyphens}" in sweep["command"] and "logger=wandb" in sweep["command"]
    fixed = [c for c in sweep["command"][2:] if not c.startswith("${")]
    for params in (sample(sweep["parameters"], random.Random(k)) for k in range(3)):
        with initialize_config_dir(CONF, version_base=None):  # every parameter is a key of the composed config
            cfg = compose("train", overrides=[*fixed, *(f"{k}={v}" for k, v in params.items())])
        for k, v in params.items():
            if k != "experiment":
                got = cfg
                for part in k.split("."):
                    got = got[part]
                assert got == v, k


@pytest.mark.slow  # two agent trials in subprocesses: 38 s
def test_two_agent_trials_in_one_slurm_job_train_in_their_own_folders(tmp_path):
    """docs/scaling.md's recipe: `wandb agent --count 20` in one SLURM job runs trial after trial, each command
    expanded as the agent expands it, with the agent's run id in WANDB_RUN_ID. Each trial trains to completion in
    its own folder (`runs/e4e/wandb-<run id>`), and a trial the agent runs again continues in its folder."""
    sweep = yaml.safe_load((ROOT / "experiments" / "sweeps" / "e4e_loss_weights.yaml").read_text())
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "SLURM_JOB_ID": "4242",
           "WANDB_SWEEP_ID": "sweep1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    trials = {}
    for k, run_id in enumerate(("trial1", "trial2")):
        params = sample(sweep["parameters"], random.Random(k))
        command = agent_command(sweep, params)
        assert command[:4] == ["/usr/bin/env", "ganinv-train", "experiment=toy_e4e", "logger=wandb"]
        assert command[4:] == [f"{k}={v}" for k, v in params.items()]
        done = subprocess.run([*command, *SWEEP_TINY], env={**env, "WANDB_RUN_ID": run_id}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        trials[run_id] = params, command
    for run_id, (params, _) in trials.items():
        run = tmp_path / "runs" / "e4e" / f"wandb-{run_id}"
        record = json.loads((run / "record.json").read_text())
        assert record["finished"] is True
        assert record["config"]["loss"]["weights"]["perceptual"] == pytest.approx(params["loss.weights.perceptual"])
        logged = wandb_offline_run(next((run / "wandb").rglob("run-*.wandb")))
        assert logged["id"] == run_id  # the agent's run
        assert logged["defined"]["eval/mse"] == ["min"] and logged["defined"]["eval/psnr"] == ["max"]
        values = [row["eval/mse"] for row in logged["history"] if "eval/mse" in row]
        assert len(values) == 2 and record["metrics"]["mse"] == pytest.approx(min(values))  # the run's best
    # The agent runs trial1 again (a preempted trial): it continues in its folder, where it had finished.
    again = subprocess.run([*trials["trial1"][1], *SWEEP_TINY], env={**env, "WANDB_RUN_ID": "trial1"}, cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "resuming from" in again.stderr + again.stdout, again.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs" / "e4e").iterdir()) == ["wandb-trial1", "wandb-trial2"]
