"""What a new user types: record names that say what ran, a leaderboard row per experiment, resume that refuses
another run, errors before the work that name the key or path (and leave no empty folder), sizes that follow the
method and its generator."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from torch import nn

from ganinv.metrics.records import experiment_key, make_record, write_record
from tests.commands import command, composed, in_process, one_line_error
from tests.runs import THREADS
from tests.wandb_files import wandb_offline_run

TINY = ["method.encoder.widths=[8,8,12,16]", "data.batch_size=4", "data.toy.n_val=8", "logger=none", THREADS,
        "callbacks.metrics.every=0", "callbacks.images.every=0", "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """pSp in W+ and in W, 2 iterations each on the toy domain."""
    from ganinv.workflows.training import train

    out = {}
    for name in ("psp", "psp_w"):
        run = tmp_path_factory.mktemp(name)
        train(composed("train", f"experiment=toy_{name}", "trainer.max_steps=2", f"run_dir={run}", *TINY))
        out[name] = run / "checkpoints" / "last.ckpt"
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Six 256-px images, as a user's folder of real photos would be."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_records_are_named_after_what_ran_and_rows_group_repeats(runs, tmp_path, capsys):
    from ganinv.workflows.evaluation import evaluate
    from ganinv.workflows.leaderboard import leaderboard

    small = ["n_images=4", "editability.lec_images=2", "editability.p_norm_samples=500", "fid=none"]
    for name, ckpt in runs.items():
        for seed in (7, 8):  # the same evaluation on two held-out sets: one row, two runs
            evaluate(composed("eval", f"checkpoint={ckpt}", f"output={tmp_path}/{name}_{seed}.json", f"seed={seed}",
                              *small))
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert sorted({r["name"] for r in records}) == ["pSp (W)", "pSp (W+)"]
    entries = leaderboard(composed("leaderboard", f"input={tmp_path}", "show=[]", f"output={tmp_path / 'board'}"))
    # one checkpoint (one run, one training seed) measured on two held-out sets: two evaluations of one run
    assert sorted((e.name, e.n, e.seeds, e.evaluations) for e in entries) == [("pSp (W)", 1, 1, 2),
                                                                             ("pSp (W+)", 1, 1, 2)]
    assert {e.checkpoints[0].split(" (iteration")[0] for e in entries} == {str(c) for c in runs.values()}
    rows = list(csv.DictReader((tmp_path / "board" / "leaderboard.csv").open()))
    assert all(r["checkpoints"] == f"{runs['psp']} (iteration 2)" for r in rows if r["name"] == "pSp (W+)")
    # the same measurement again (a re-evaluation): still one entry, the newest, with a note
    evaluate(composed("eval", f"checkpoint={runs['psp']}", f"output={tmp_path}/again.json", "seed=7", *small))
    capsys.readouterr()
    entries = leaderboard(composed("leaderboard", f"input={tmp_path}", "show=[]"))
    again = next(e for e in entries if e.name == "pSp (W+)")
    assert (again.n, again.evaluations, again.replaced) == (1, 2, 1)
    assert "pSp (W+): 1 re-evaluation(s) of a measurement already on the board left out" in capsys.readouterr().out
    evaluate(composed("eval", f"checkpoint={runs['psp']}", f"output={tmp_path}/renamed.json", "name=mine", *small))
    assert json.loads((tmp_path / "renamed.json").read_text())["name"] == "mine"


def test_default_names_say_what_changes_the_method(tiny_generator):
    from ganinv.methods import AverageCode, IDInvertModule, ReStyleModule
    from ganinv.refine import CodeOptimiser, DomainRegularisedOptimiser, PivotalTuning
    from ganinv.workflows.inverter import Inverter

    def name(module, refiner) -> str:
        return Inverter(module, refiner).name()

    start = AverageCode(tiny_generator)
    assert name(start, CodeOptimiser(start, None, space="w", steps=100, lr=0.05, perceptual=0)) == \
        "Optimisation (W, 100 steps, lr 0.05)"
    assert ReStyleModule(tiny_generator, variant="e4e", backbone="resnet", encoder={"widths": [8, 8, 12, 16]},
                         input_size=32).label() == "ReStyle-e4e (ResNet34)"
    domain = IDInvertModule(tiny_generator, encoder={"channel_base": 4, "channel_max": 8}, input_size=32)
    assert name(domain, DomainRegularisedOptimiser(domain)) == "In-Domain encoder + In-Domain optimiser"
    assert name(domain, DomainRegularisedOptimiser(domain, encoder_weight=0.0)) == \
        "In-Domain encoder + In-Domain optimiser without regulariser"
    assert name(domain, DomainRegularisedOptimiser(domain, encoder_weight=0.0, steps=500)) == \
        "In-Domain encoder + In-Domain optimiser without regulariser (steps 500)"
    net = nn.Identity()  # any perceptual net: naming only checks that there is one
    assert name(domain, PivotalTuning(domain, net)) == "In-Domain encoder + PTI"
    assert name(start, PivotalTuning(start, net, pivot="w", steps=20)) == "PTI on a W pivot (steps 20)"


def test_leaderboard_separates_experiments_and_says_when_image_counts_differ(tmp_path, capsys):
    from ganinv.workflows.leaderboard import leaderboard

    def record(name, group, seed, mse, n):
        rec = make_record(name, "PSPModule", {"mse": mse, "lec": 10.0}, group=experiment_key({"lr": group}),
                          data={"n_images": n, "seed": seed})
        write_record(rec, tmp_path / f"{name}_{group}_{seed}.json")

    record("pSp (W+)", 1, 0, 0.02, 32)
    record("pSp (W+)", 1, 1, 0.03, 32)
    record("pSp (W+)", 2, 0, 0.05, 32)  # another learning rate under the same name
    record("Optimisation (W+, 100 steps, lr 0.05)", 3, 0, 0.01, 16)
    entries = leaderboard(composed("leaderboard", f"input={tmp_path}", "show=[]"))
    rows = {e.name: e for e in entries}
    assert len(rows) == 3 and sorted(e.n for e in entries) == [1, 1, 2]
    assert all(name.startswith("pSp (W+) [") for name in rows if name.startswith("pSp"))
    printed = capsys.readouterr().out
    assert "different numbers of images: 16 (Optimisation" in printed and "32 (pSp (W+) [" in printed
    assert "± 0" not in printed.split("Optimisation")[1].splitlines()[0]  # no std for a single run


@pytest.mark.slow  # five short trainings and a multirun: 26 s
def test_resume_refuses_another_seeds_run_and_multirun_jobs_get_their_own_folder(tmp_path):
    args = ["-m", "experiment=toy_psp", "seed=0,1", "trainer.max_steps=1", *TINY]
    same = command("train", *args, f"run_dir={tmp_path / 'one'}", cwd=tmp_path)
    assert same.returncode == 2, same.stderr[-3000:]
    assert "holds another run: its config differs in data.seed (0 there, 1 now), seed (0 there, 1 now)" in \
        same.stderr and "resume=never or another run_dir" in same.stderr
    own = command("train", *args, cwd=tmp_path)
    assert own.returncode == 0, own.stderr[-3000:]
    jobs = sorted(p.parent.parent for p in (tmp_path / "multirun").glob("*/*/checkpoints/last.ckpt"))
    assert [j.name for j in jobs] == ["seed=0", "seed=1"]  # named after what varies in the sweep
    assert all((j / ".hydra").is_dir() and (j / "config.yaml").is_file() for j in jobs)


def test_commands_fail_before_the_work_naming_the_key_or_path(runs, photos, tmp_path, monkeypatch, capsys):
    ckpt = str(runs["psp"])
    cases = [
        ("eval", [f"checkpoint={ckpt}"], "ganinv-eval", ["output= is required"]),
        ("eval", [f"checkpoint={ckpt}", "output=/proc/x.json"], "ganinv-eval", ["output=/proc/x.json: cannot write"]),
        ("eval", [f"checkpoint={ckpt}", f"output={photos / 'p0.png'}/r.json"], "ganinv-eval", ["p0.png is a file"]),
        ("invert", [f"checkpoint={ckpt}", f"output={tmp_path / 'out'}"], "ganinv-invert", ["input= is required"]),
        ("invert", [f"checkpoint={ckpt}", f"input={tmp_path / 'nope'}", f"output={tmp_path / 'out'}"],
         "ganinv-invert", ["nope: image folder does not exist. Point input at"]),
        ("edit", [f"checkpoint={ckpt}", f"input={photos}", "output=/proc/g.png"], "ganinv-edit", ["output=/proc"]),
        ("edit", [f"checkpoint={ckpt}", f"interpolate=[{photos / 'p0.png'},{tmp_path / 'bad.png'}]",
                  f"output={tmp_path / 'i.png'}"], "ganinv-edit", ["bad.png: ", "interpolate= takes two readable"]),
        ("leaderboard", [], "ganinv-leaderboard", ["input= is required"]),
        ("train", ["run_dir=/proc/x"], "ganinv-train", ["run_dir=/proc/x: cannot write in /proc"]),
        ("train", ["experiment=toy_psp", "trainer.max_step=10"], "ganinv-train",
         ["trainer.max_step is not an option; did you mean trainer.max_steps?"]),
        ("train", ["experiment=toy_psp", "data=images", "data.images.rooot=x"], "ganinv-train",
         ["data.images.rooot is not an option; did you mean data.images.root?"]),
        ("train", ["experiment=toy_psp", "+trainer.max_step=10", f"run_dir={tmp_path / 'run'}"], "ganinv-train",
         ["trainer.max_step is not an option of Lightning's Trainer; did you mean trainer.max_steps?"]),
    ]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    monkeypatch.chdir(tmp_path)
    for name, args, prog, expected in cases:
        one_line_error(in_process(name, *args, monkeypatch=monkeypatch, capsys=capsys), prog, *expected)
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()  # no empty folders left behind


@pytest.mark.slow  # two ganinv-invert processes: 15-30 s
def test_invert_names_its_own_bad_image_option(runs, photos, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in sorted(photos.glob("*.png"))[:2]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    run = command("invert", f"checkpoint={runs['psp']}", f"input={folder}", f"output={tmp_path / 'out'}", cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.startswith("ganinv-invert: error: ") and "broken.png" in run.stderr
    assert "raise max_bad_fraction if skipping" in run.stderr and "data.images" not in run.stderr  # its own key
    assert "Traceback" not in run.stderr
    run = command("invert", f"checkpoint={runs['psp']}", f"input={folder}", f"output={tmp_path / 'out'}",
                  "max_bad_fraction=0.5", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    said = [line for line in run.stderr.splitlines() if "skipping" in line]
    assert said and said[0].startswith("ganinv-invert: warning: ") and "UserWarning" not in run.stderr


def test_sizes_follow_the_checkpoint_and_its_generator(runs, photos, tmp_path):
    """A 64-px toy checkpoint on a folder of 256-px photos: trains and evaluates at the generator's size; a target
    size the toy metrics cannot compare at is one line at start."""
    from ganinv.methods import ConfigError
    from ganinv.workflows.evaluation import evaluate
    from ganinv.workflows.training import train

    images = ["data=images", f"data.images.root={photos}", "data.images.val_fraction=0.5", "data.num_workers=0"]
    run = tmp_path / "run"
    train(composed("train", "experiment=toy_psp", "trainer.max_steps=1", "trainer.val_check_interval=1",
                   f"run_dir={run}", *[t for t in TINY if "metrics.every" not in t and "toy.n_val" not in t],
                   "callbacks.metrics.every=1", "callbacks.metrics.n_images=2", "editability.lec_images=1",
                   "editability.p_norm_samples=500", *images))
    assert json.loads((run / "record.json").read_text())["data"]["n_images"] == 2
    out = tmp_path / "r.json"
    evaluate(composed("eval", f"checkpoint={runs['psp']}", f"output={out}", "n_images=2", "fid=none",
                      "editability.lec_images=1", "editability.p_norm_samples=500", *images))
    assert json.loads(out.read_text())["data"]["n_images"] == 2
    with pytest.raises(ConfigError, match="data.target_size=256 but the generator makes 64-px images"):
        evaluate(composed("eval", f"checkpoint={runs['psp']}", f"output={out}", "data.target_size=256", *images))


def test_the_docs_parity_setting_trains_with_every_callback_on(tmp_path):
    """`trainer.precision=64-true` (docs/scaling.md's parity runs) with the metrics and image callbacks on: the
    evaluation samples W in the generator's precision."""
    from ganinv.workflows.training import train

    run = tmp_path / "run"
    train(composed("train", "experiment=toy_psp", "trainer.max_steps=2", "trainer.val_check_interval=2",
                   "trainer.precision=64-true", f"run_dir={run}", *[a for a in TINY if "every=0" not in a],
                   "callbacks.metrics.n_images=4", "editability.lec_images=2",
                   "editability.p_norm_samples=200", "callbacks.images.n_images=2"))
    record = json.loads((run / "record.json").read_text())
    assert record["finished"] and {"mse", "p_norm", "lec"} <= set(record["metrics"])
    assert list((run / "images").glob("*.png"))


def test_gradient_accumulation_is_refused_with_what_to_do_instead(tmp_path):
    from ganinv.methods import ConfigError
    from ganinv.workflows.training import train

    for experiment in ("toy_psp", "toy_restyle_psp"):
        with pytest.raises(ConfigError, match=r"trainer.accumulate_grad_batches=2: gradient accumulation is not "
                                              r"supported.*train on more processes \(trainer.devices"):
            train(composed("train", f"experiment={experiment}", "+trainer.accumulate_grad_batches=2",
                           f"run_dir={tmp_path / experiment}", *TINY))
        assert not (tmp_path / experiment).exists()


def test_train_refuses_missing_gpus_and_a_full_disk_before_training(tmp_path, monkeypatch):
    import shutil

    import torch

    from ganinv.methods import ConfigError
    from ganinv.workflows.training import train

    args = ["experiment=toy_psp", "trainer.max_steps=1", f"run_dir={tmp_path / 'run'}", *TINY]
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="trainer.devices=2 but this machine has 0 GPU"):
            train(composed("train", *args, "trainer.accelerator=gpu", "trainer.devices=2"))
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))  # 1 MiB left
    with pytest.raises(ConfigError, match=r"1 MiB free on its disk, but writing a checkpoint needs about \d+ MiB"):
        train(composed("train", *args))
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow  # three trainings in subprocesses, one killed: 70 s
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGUSR2"])
def test_a_signal_saves_exits_128_plus_it_and_the_same_command_continues_exactly(tmp_path, sig):
    """A scheduler's SIGTERM (or SIGUSR2) mid-run: the batch ends, last.ckpt is written, exit 143 (140) within one
    batch plus the save, without the evaluation a stop would otherwise start; run again, the same command
    continues and ends with the weights of an uninterrupted run."""
    import signal
    import time

    import torch

    run = tmp_path / "run"
    # An evaluation every 8 iterations on 24 images (with LEC) takes far longer than a batch and a save.
    evaluated = [a for a in TINY if "metrics.every" not in a] + [
        "callbacks.metrics.every=1", "trainer.val_check_interval=8", "callbacks.metrics.n_images=24",
        "editability.lec_images=24", "editability.p_norm_samples=500", "data.toy.n_val=24"]
    # SIGUSR2 under a W&B run (a sweep agent's, say): the run is marked preempting, so a sweep re-queues it.
    watched = ["logger=wandb", "logger.mode=offline"] if sig == "SIGUSR2" else []
    args = [sys.executable, "-m", "ganinv.commands.train",
            "experiment=toy_psp", "trainer.max_steps=400", f"run_dir={run}",
            "callbacks.checkpoint_every=4", *evaluated, *watched]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "WANDB_SILENT": "true"})
    deadline = time.time() + 300
    while not (run / "metrics.jsonl").is_file() or not (run / "metrics.jsonl").read_text():  # one evaluation done
        assert time.time() < deadline and proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.1)
    rows = (run / "metrics.jsonl").read_text()
    signalled = time.perf_counter()
    proc.send_signal(getattr(signal, sig))
    err, _ = proc.communicate(timeout=300)
    took = time.perf_counter() - signalled
    assert proc.returncode == 128 + getattr(signal, sig), err[-3000:]
    stopped = int(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]["iteration"])
    assert 8 <= stopped < 400 and f"stopped by {sig} at iteration {stopped}" in err
    assert (run / "metrics.jsonl").read_text() == rows  # no evaluation after the signal
    seconds = [float(t) for t in re.findall(r"evaluated in ([0-9.]+) s", err)]
    assert seconds and took < max(seconds), (took, seconds)  # a batch and a save: less than one evaluation
    if sig == "SIGUSR2":
        logged = wandb_offline_run(next((run / "wandb").rglob("run-*.wandb")))
        assert logged["preempting"] and logged["exit_code"] == 140
        return
    from ganinv.workflows.training import train

    again = [a for a in args[3:] if not a.startswith("trainer.max_steps")] + [f"trainer.max_steps={stopped + 2}"]
    train(composed("train", *again))
    whole = tmp_path / "whole"
    train(composed("train", *[a if not a.startswith("run_dir") else f"run_dir={whole}" for a in again]))
    a, b = (torch.load(r / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for r in (run, whole))
    assert int(a["iteration"]) == stopped + 2
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in b) <= 1e-6
