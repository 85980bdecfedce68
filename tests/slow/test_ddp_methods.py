"""Multi-process checks (make test-all): methods train under DDP on two CPU processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["toy_psp", "toy_e4e"])
def test_method_trains_on_two_ddp_processes(tmp_path, experiment):
    overrides = [f"experiment={experiment}", f"run_dir={tmp_path}", "trainer=ddp", "trainer.accelerator=cpu",
                 "trainer.devices=2", "trainer.max_steps=4", "callbacks.checkpoint_every=2", "data.batch_size=4",
                 "method.encoder.widths=[8,8,12,16]", "method.progressive_start=1", "method.progressive_step_every=1",
                 "trainer.val_check_interval=2", "data.toy.n_val=8", "threads=1", "logger=none",
                 "callbacks.metrics.n_images=4", "editability.lec_images=2", "callbacks.images.n_images=2"]
    if experiment == "toy_psp":
        overrides = [o for o in overrides if "progressive" not in o]
    run = subprocess.run([sys.executable, "-m", "ganinv.commands.train", *overrides], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(state["state_dict"]["iteration"]) == 4 and (tmp_path / "checkpoints" / "best.ckpt").exists()
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()  # written once, by rank 0
    assert [json.loads(r)["iteration"] for r in rows] == [2, 4] and (tmp_path / "images").is_dir()
    record = json.loads((tmp_path / "record.json").read_text())  # both ranks evaluated their half of the subset
    assert record["data"]["n_images"] == record["timing"]["images"] == 4


@pytest.mark.slow
def test_a_process_group_that_cannot_start_is_one_line(tmp_path):
    with socket.socket() as taken:  # rank 0 cannot listen on a port another program holds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(taken.getsockname()[1])}
        run = subprocess.run([sys.executable, "-m", "ganinv.commands.train",
                              "experiment=toy_psp", f"run_dir={tmp_path}",
                              "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=2",
                              "data.batch_size=4", "logger=none"], capture_output=True, text=True, env=env,
                             timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ganinv-train: error: the gloo process group of trainer=ddp did not start")
    assert f"MASTER_PORT={env['MASTER_PORT']}" in last and "free port" in last


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_every_rank_at_one_checkpoint(tmp_path):
    """SLURM may signal any task: SIGUSR2 to rank 1 alone ends the batch on both ranks, saves, and exits 140."""
    import re
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "ganinv.commands.train", "experiment=toy_psp", f"run_dir={tmp_path}",
                             "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=500",
                             "data.batch_size=4", "method.encoder.widths=[8,8,12,16]", "logger=none",
                             "callbacks.log_every=1", "threads=1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    log, end = tmp_path / "train.log", time.monotonic() + 300
    while time.monotonic() < end and not (log.exists() and re.search(r"iteration 3/", log.read_text())):
        time.sleep(0.05)
    children = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "ganinv.commands.train"], capture_output=True,
                              text=True).stdout.split()
    assert children, "rank 1 was not found"
    os.kill(int(children[0]), signal.SIGUSR2)
    assert proc.wait(timeout=300) == 140, proc.stderr.read()[-3000:]
    stopped = int(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]["iteration"])
    assert 3 <= stopped < 500
