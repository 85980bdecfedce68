"""Entry points compose as documented (data=images / data=generated), list the groups they use, and report a
user's mistake as one line with exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv.checkpoints import load_generator
from ganinv.configs import CONF
from ganinv.workflows.generator import train
from tests.runs import generator_config


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganinv.commands.train_generator",
                           *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_help_lists_the_groups_the_command_uses(tmp_path):
    out = cli("--help", cwd=tmp_path).stdout
    groups = dict(re.findall(r"^(\w+): (.+)$", out.split("== Config groups ==")[1].split("==")[0], re.M))
    assert set(groups) == {"data"}  # not generator or loss, which ganinv-train-generator does not read
    for group, options in groups.items():
        assert {o.strip() for o in options.split(",")} == {p.stem for p in (Path(CONF) / group).glob("*.yaml")}


@pytest.mark.parametrize("source", ["images", "generated"])
def test_data_sources_as_the_docs_write_them(tmp_path, source):
    extra = [f"data={source}"]
    if source == "images":
        rng = np.random.default_rng(0)
        (tmp_path / "imgs").mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
        extra += [f"data.images.root={tmp_path / 'imgs'}", "data.num_workers=0", "data.images.val_fraction=0.2"]
    out = train(generator_config(tmp_path / "run", 2, extra=extra))
    ckpt = torch.load(out / "last.ckpt", weights_only=True)
    assert int(ckpt["state_dict"]["iteration"]) == 2 and ckpt["StyleGAN2DataModule"]["batches"] == 2
    assert load_generator(out / "generator.pt").size == 16  # the trained EMA generator, loadable


def test_user_mistakes_are_one_line(tmp_path):
    for args, expected in ((["+data.rooot=1"], "unknown option(s) data.rooot"),
                           (["data=images", "data.images.root=/nope"], "/nope: image folder does not exist"),
                           ([f"resume={tmp_path}/missing.ckpt"], "missing.ckpt: no such checkpoint")):
        run = cli(*args, "trainer.accelerator=cpu", cwd=tmp_path)
        assert run.returncode == 2, run.stderr[-2000:]
        assert run.stderr.startswith("ganinv-train-generator: error:") and expected in run.stderr
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_toy_loader_names_a_wrong_path():
    from ganinv.checkpoints import CheckpointError
    from ganinv.toy import load_generator

    with pytest.raises(CheckpointError, match="/wrong/path.pt: no such file") as info:
        load_generator("/wrong/path.pt")
    assert "trained" not in str(info.value)


def test_a_short_run_is_quiet_and_logs(tmp_path):
    args = [f"out_dir={tmp_path / 'run'}", "trainer.accelerator=cpu", "model.max_iterations=4", "checkpoint_every=2",
            "model.size=16", "model.style_dim=16", "model.n_mlp=2", "model.channel_max=16", "data.batch_size=4",
            "data.toy.n_train=32"]
    run = cli(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    noise = [line for line in (run.stdout + run.stderr).splitlines()
             if re.search(r"warn|deprecat|tip:|weights_only|module\(s\) in eval mode", line, re.I)]
    assert not noise, noise
    log = (tmp_path / "run" / "train_generator.log").read_text()
    assert "iteration 4/4" in log and "finished at iteration 4" in log
    assert len(re.findall(r"\[ganinv\]\[INFO\] - iteration 4/4", run.stdout + run.stderr)) == 1  # one final save


@pytest.mark.parametrize("override, expected", [
    ("~loss.weights.id", "loss.weights.id is missing: PSPModule computes l2, perceptual, id, w_norm"),
    ("+loss.weights.style=1", "loss.weights.style is not a term of PSPModule"),
    ("loss/identity=none", "loss.weights.id is 0.1 but loss.identity is none")])
def test_train_names_a_missing_or_unknown_loss_weight(tmp_path, override, expected, monkeypatch, capsys):
    from tests.commands import in_process, one_line_error

    monkeypatch.chdir(tmp_path)
    run = in_process("train", "experiment=toy_psp", override, f"run_dir={tmp_path / 'run'}", monkeypatch=monkeypatch,
                     capsys=capsys)
    one_line_error(run, "ganinv-train", expected)
    assert not (tmp_path / "run").exists()
