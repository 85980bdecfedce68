"""A SLURM job's preemption, without a cluster: `ganinv-train -m hydra/launcher=slurm_local trainer=slurm` runs
through submitit's local executor; the job gets submitit's preemption signal (USR2) mid-run, saves, is requeued,
resumes in the same run folder and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.runs import SMALL, max_difference

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the extra ganinv[slurm]")
pytestmark = pytest.mark.slow

STEPS = 60
ARGS = ["experiment=toy_psp", *SMALL["toy_psp"], f"trainer.max_steps={STEPS}", "data.batch_size=4",
        "callbacks.checkpoint_every=5", "trainer.val_check_interval=1000", "data.toy.n_train=64", "data.toy.n_val=8",
        "threads=1", "logger=none", "callbacks.metrics.every=0", "callbacks.images.every=0", "seed=3"]


def job_processes(folder: Path) -> list[int]:
    """The pids of submitit's task processes whose command names `folder`."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if proc.name.isdigit() and "submitit.core._submit" in cmd and str(folder) in cmd:
            out.append(int(proc.name))
    return out


def submit(sweep: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ganinv.commands.train", "-m", "hydra/launcher=slurm_local",
                             "trainer=slurm", "trainer.accelerator=cpu", f"hydra.sweep.dir={sweep}", *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def last_checkpoint(sweep: Path) -> dict:
    runs = [p.parent.parent for p in sweep.glob("*/checkpoints/last.ckpt")]
    assert len(runs) == 1, runs  # one run folder per job, whatever its restarts
    return torch.load(runs[0] / "checkpoints" / "last.ckpt", weights_only=True)


def test_a_preempted_job_is_requeued_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    job = submit(sweep)
    deadline = time.time() + 300
    while not list(sweep.glob("*/checkpoints/last.ckpt")) and time.time() < deadline and job.poll() is None:
        time.sleep(0.2)
    pids = job_processes(sweep)
    assert pids, "no submitit task was running when the first checkpoint appeared"
    for pid in pids:
        os.kill(pid, signal.SIGUSR2)
    output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, output[-4000:]

    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.*"))
    assert "Requeued job" in logs and "resuming from" in logs, logs[-4000:]
    interrupted = last_checkpoint(sweep)
    assert int(interrupted["state_dict"]["iteration"]) == STEPS

    whole = submit(tmp_path / "whole")
    output, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, output[-4000:]
    reference = last_checkpoint(tmp_path / "whole")
    assert max_difference(interrupted["state_dict"], reference["state_dict"]) <= 1e-6
