"""kill -9 at any moment (make test-all): the same command continues the run from its last checkpoint and ends
exactly as an uninterrupted run, with every checkpoint readable, each evaluation recorded once, and one W&B run."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.wandb_files import wandb_offline_run

STEPS, EVERY, VALIDATE = 24, 4, 6
OVERRIDES = ["experiment=toy_psp", "method.encoder.widths=[8,8,12,16]", "data.batch_size=4",
             f"trainer.max_steps={STEPS}", f"callbacks.checkpoint_every={EVERY}",
             f"trainer.val_check_interval={VALIDATE}", "callbacks.log_every=1", "callbacks.metrics.n_images=4",
             "editability.lec_images=2", "editability.p_norm_samples=200", "callbacks.images.n_images=2",
             "data.toy.n_train=64", "data.toy.n_val=8", "threads=1", "logger=wandb", "logger.mode=offline"]


def launch(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ganinv.commands.train", *OVERRIDES, f"run_dir={run_dir}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, moment: Callable[[], bool], timeout: float = 300) -> bool:
    """SIGKILL `proc` as soon as `moment()` holds (polled every millisecond); False if it ended first."""
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        if moment():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.001)
    assert proc.poll() is not None, "the run neither finished nor reached the moment"
    return False


def logged_iteration(run_dir: Path, since: int) -> int:
    log = run_dir / "train.log"
    text = log.read_text()[since:] if log.exists() else ""
    return max((int(m[1]) for m in re.finditer(r"\] - iteration (\d+)/", text)), default=-1)


def params(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in torch.load(path, weights_only=True)["state_dict"].items() if k.startswith("encoder.")}


@pytest.mark.slow
def test_kill_9_anywhere_then_the_same_command_ends_as_an_uninterrupted_run(tmp_path):
    whole = tmp_path / "whole"
    assert launch(whole).wait() == 0
    run, rng = tmp_path / "killed", random.Random(0)
    ckpts = run / "checkpoints"

    def at_iteration(since: int) -> Callable[[], bool]:
        target = rng.randint(1, STEPS - 1)
        return lambda: logged_iteration(run, since) >= target

    def writing_checkpoint() -> bool:
        return (ckpts / ".last.ckpt.tmp").exists()

    def validating() -> bool:  # the validation callbacks are at work: the image grid is written, the metrics next
        return len(list((run / "images").glob("*.png"))) > validating.seen if (run / "images").exists() else False

    moments = ["iteration", "checkpoint", "validation", "iteration", "checkpoint", "validation", "iteration"]
    kills = []
    for what in moments:
        since = (run / "train.log").stat().st_size if (run / "train.log").exists() else 0
        validating.seen = len(list((run / "images").glob("*.png"))) if (run / "images").exists() else 0
        moment = {"iteration": at_iteration(since), "checkpoint": writing_checkpoint, "validation": validating}[what]
        proc = launch(run)
        if kill_when(proc, moment):
            kills.append(what)
        else:
            assert proc.returncode == 0, proc.stderr.read()[-3000:]
            break
        for ckpt in ckpts.glob("*.ckpt"):  # never an unreadable checkpoint
            torch.load(ckpt, weights_only=True)
    assert len(kills) >= 5 and {"checkpoint", "validation"} <= set(kills), kills
    final = launch(run)
    assert final.wait() == 0, final.stderr.read()[-3000:]

    a, b = params(whole / "checkpoints" / "last.ckpt"), params(ckpts / "last.ckpt")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == list(range(VALIDATE, STEPS + 1, VALIDATE))
    reference = [json.loads(r) for r in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [r["mse"] for r in rows] == pytest.approx([r["mse"] for r in reference], rel=1e-5)

    # One W&B run, whose history, read in order, holds every evaluation exactly once.
    files = sorted((run / "wandb").glob("offline-run-*/run-*.wandb"))
    runs = [wandb_offline_run(f) for f in files]
    assert len(files) > 1 and len({f.stem for f in files}) == 1  # run-<id>.wandb, every time
    assert {r["id"] for r in runs if r["id"] or r["history"]} == {files[0].stem[len("run-"):]}  # (a run killed
    # while W&B starts may hold no record yet)
    steps = [row["trainer/global_step"] for r in runs for row in r["history"] if "eval/mse" in row]
    assert steps == list(range(VALIDATE, STEPS + 1, VALIDATE))
    losses = [row["trainer/global_step"] for r in runs for row in r["history"] if "train/loss" in row]
    assert losses == sorted(set(losses))  # no iteration logged twice
