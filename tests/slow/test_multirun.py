"""A Hydra multirun of 2 methods x 3 seeds becomes 2 leaderboard rows of 3 runs each (mean ± std), with the runs
that must not count listed, and the board logged to W&B as a run of job type leaderboard."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from ganinv.metrics.records import make_record, write_record
from tests.runs import SWEEP_TINY
from tests.wandb_files import wandb_offline_run

pytestmark = pytest.mark.slow


def test_a_multirun_of_two_methods_over_three_seeds_is_two_rows(tmp_path):
    sweep = tmp_path / "sweep"
    done = subprocess.run([sys.executable, "-m", "ganinv.commands.train",
                           "-m", "experiment=toy_psp,toy_psp_w", "seed=0,1,2",
                           f"hydra.sweep.dir={sweep}", "logger=wandb", "logger.mode=offline", *SWEEP_TINY],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "WANDB_SILENT": "true"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.parent.name for p in sweep.glob("*/record.json")) == [
        f"experiment={e},seed={s}" for e in ("toy_psp", "toy_psp_w") for s in (0, 1, 2)]  # what varies, flat
    # the jobs share one process: each has its own W&B run, with its own history
    runs = [wandb_offline_run(next(job.glob("offline-run-*/run-*.wandb"))) for job in sweep.glob("*/wandb")]
    assert len(runs) == 6 and len({r["id"] for r in runs}) == 6 and all(r["history"] for r in runs)
    # what must not count: a run without a record, one that did not finish, one of another generator
    (sweep / "crashed" / "checkpoints").mkdir(parents=True)
    (sweep / "crashed" / "config.yaml").write_text("seed: 0\n")
    one = json.loads(next(sweep.glob("*/record.json")).read_text())
    write_record({**one, "finished": False}, sweep / "killed" / "record.json")
    write_record({**one, "generator": {"hash": "0" * 64}}, sweep / "other" / "record.json")
    write_record(make_record("x", "X", {"mse": 1.0}), sweep / "unrelated.json")  # an eval record: no domain
    board = subprocess.run([sys.executable, "-m", "ganinv.commands.leaderboard", f"input={sweep}",
                            f"output={tmp_path / 'board'}", "wandb.mode=offline", f"wandb.dir={tmp_path / 'w'}"],
                           capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_SILENT": "true"})
    assert board.returncode == 0, board.stderr[-3000:]
    printed = board.stdout
    rows = list(csv.DictReader((tmp_path / "board" / "leaderboard.csv").open()))
    assert sorted((r["name"], r["runs"]) for r in rows) == [("pSp (W) (experiment=toy_psp_w)", "3"),
                                                           ("pSp (W+) (experiment=toy_psp)", "3")]
    assert all(float(r["mse_std"]) > 0 and len(r["checkpoints"].split("; ")) == 3 for r in rows)
    for name, why in (("crashed", "no record"), ("killed", "unfinished"), ("other", "another generator"),
                      ("unrelated.json", "another generator")):
        assert any(name in line and why in line for line in printed.splitlines() if line.startswith("skipped")), name
    board = wandb_offline_run(next((tmp_path / "w").rglob("run-*.wandb")))
    assert board["job_type"] == "leaderboard" and "leaderboard" in board["history"][0]
