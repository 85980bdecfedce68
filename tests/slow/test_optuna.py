"""A Bayesian search with Hydra's Optuna sweeper over a loss weight: it optimises the value `ganinv-train` returns,
the run's best `objective` from its record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.runs import SWEEP_TINY

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the extra ganinv[sweeps]")
pytestmark = pytest.mark.slow


def optuna(sweep, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganinv.commands.train",
                           "-m", "experiment=toy_psp", "hydra/sweeper=optuna",
                           f"hydra.sweep.dir={sweep}", "logger=none", *SWEEP_TINY, *args], capture_output=True,
                          text=True, timeout=600)


def test_optuna_minimises_the_returned_objective(tmp_path):
    done = optuna(tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.direction=minimize",
                  "loss.weights.perceptual=interval(0.1,1.0)")
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*/record.json")]
    assert len(records) == 3 and len({r["config"]["loss"]["weights"]["perceptual"] for r in records}) == 3
    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    best = min(records, key=lambda r: r["metrics"]["mse"])
    assert result["best_value"] == pytest.approx(best["metrics"]["mse"])
    assert result["best_params"]["loss.weights.perceptual"] == pytest.approx(
        best["config"]["loss"]["weights"]["perceptual"])
    # each trial's run folder is named after its sampled value alone, and the results name the folders
    folders = sorted(p.parent.name for p in tmp_path.glob("*/record.json"))
    assert all(f.startswith("loss.weights.perceptual=") and "," not in f for f in folders), folders
    assert sorted(t["run"] for t in result["trials"]) == folders
    assert result["best_run"] == result["trials"][0]["run"] == Path(best["run"]).name
    assert [t["value"] for t in result["trials"]] == sorted(r["metrics"]["mse"] for r in records)


def test_a_direction_against_the_objective_is_refused(tmp_path):
    done = optuna(tmp_path, "hydra.sweeper.n_trials=1", "hydra.sweeper.direction=minimize", "objective=psnr",
                  "loss.weights.perceptual=interval(0.1,1.0)")
    assert done.returncode == 2 and not list(tmp_path.iterdir())  # refused before any trial
    assert "hydra.sweeper.direction=minimize but objective=psnr" in done.stderr and "maximize" in done.stderr
