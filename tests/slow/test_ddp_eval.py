"""Distributed evaluation (make test-all): `ganinv-eval devices=2` writes the record one process writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(module: str, *overrides: str) -> None:
    # One thread per process: 2 CPU processes get one core each, and a process with 2 threads would sum its
    # convolutions in another order (relative 1e-6 after the optimiser's steps).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", module, *overrides], capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def metrics(path, n: int) -> dict:
    record = json.loads(path.read_text())
    assert record["data"]["n_images"] == n and record["timing"]["images"] == n
    return record["metrics"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run("ganinv.commands.train", "experiment=toy_psp", f"run_dir={out}", "trainer.max_steps=3", "data.batch_size=4",
        "method.encoder.widths=[8,8,12,16]", "data.toy.n_train=16", "data.toy.n_val=16", "logger=none",
        "callbacks.metrics.every=0", "callbacks.images.every=0", "threads=1")
    return out / "checkpoints" / "last.ckpt"


# 11 images in batches of 4: shares of 8 and 3 (whole batches), LEC on the first 10 crossing from one share into
# the other.
COMMON = ("n_images=11", "editability.lec_images=10", "batch_size=4", "editability.p_norm_samples=500",
          "wandb.mode=disabled")


@pytest.mark.slow
@pytest.mark.parametrize("what", ["encoder", "optimiser"])
def test_two_processes_write_the_record_one_process_writes(tmp_path, checkpoint, what):
    source = [f"checkpoint={checkpoint}"] if what == "encoder" else ["refine=optim_w", "refine.steps=5"]
    for devices in (1, 2):
        run("ganinv.commands.eval", *source, *COMMON, f"devices={devices}", f"output={tmp_path}/{devices}.json")
    one, two = metrics(tmp_path / "1.json", 11), metrics(tmp_path / "2.json", 11)
    assert one.keys() == two.keys() and {"fid_rec", "kid_rec", "lec", "mse", "p_norm"} <= one.keys()
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-6), key


@pytest.mark.slow
def test_the_metrics_callback_on_two_processes_writes_what_one_process_writes(tmp_path):
    """During training (float64, BatchNorm over the global batch, so that both trainings end equal): 5 validation
    images, dealt out to the ranks interleaved by the validation loop and gathered back in order, scored in
    shares of 4 and 1 with LEC on the first 3 (one share has none): every metric equal."""
    from tests.runs import train

    extra = ("trainer.sync_batchnorm=true", "trainer.precision=64-true", "callbacks.metrics.every=1",
             "trainer.val_check_interval=2", "callbacks.metrics.n_images=5", "editability.lec_images=3",
             "editability.p_norm_samples=500", "fid=none", "data.toy.n_val=8", "data.val_batch_size=4")
    rows = {}
    for processes in (1, 2):
        train(tmp_path / str(processes), "toy_psp", processes, steps=2, extra=extra)
        rows[processes] = json.loads((tmp_path / str(processes) / "metrics.jsonl").read_text().splitlines()[-1])
    assert rows[1]["iteration"] == 2 and {"lec", "edit_gain", "p_norm"} <= set(rows[1])
    assert set(rows[2]) == set(rows[1])
    for key, value in rows[1].items():
        assert rows[2][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
