"""The StyleGAN2 trainer runs real steps, exports a loadable generator, and resumes where it stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganinv.checkpoints import CheckpointError, load_generator
from ganinv.workflows.generator import train
from tests.runs import generator_config


def test_train_export_and_resume(tmp_path):
    out = train(generator_config(tmp_path, iterations=4))
    assert (out / "last.ckpt").exists() and (out / "samples.png").exists()
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporaries
    g = load_generator(out / "generator.pt")
    assert g.size == 16 and g.latent_avg.shape == (16,)
    first = torch.load(out / "last.ckpt", weights_only=False)  # our own file, just written
    state = first["state_dict"]
    assert int(state["iteration"]) == 4
    assert state["mean_path_length"] > 0  # the path-length regulariser ran
    assert 0 < (state["g_ema.conv1.conv.weight"] - state["generator.conv1.conv.weight"]).abs().max()  # EMA lags

    train(generator_config(tmp_path, iterations=6))  # same folder: continues from last.ckpt
    second = torch.load(out / "last.ckpt", weights_only=False)["state_dict"]
    assert int(second["iteration"]) == 6
    assert second["generator.conv1.conv.weight"].ne(state["generator.conv1.conv.weight"]).any()


def test_missing_resume_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="nope.ckpt: no such checkpoint"):
        train(generator_config(tmp_path, iterations=2, resume=str(tmp_path / "nope.ckpt")))


def params(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("n", [7, 5])  # mid-epoch, and at an epoch boundary (5 batches per epoch)
def test_resumed_run_equals_an_uninterrupted_one(tmp_path, n):
    data = ["data.toy.n_train=20", "model.mixing=0.5"]  # random mixing draws: the torch RNG must be restored
    whole = params(train(generator_config(tmp_path / "whole", 2 * n, every=100, extra=data)) / "last.ckpt")
    half = train(generator_config(tmp_path / "half", n, every=100, extra=data))
    assert int(params(half / "last.ckpt")["iteration"]) == n
    resumed = params(train(generator_config(tmp_path / "half", 2 * n, every=100, extra=data)) / "last.ckpt")
    assert int(resumed["iteration"]) == 2 * n
    worst = max((whole[k].float() - resumed[k].float()).abs().max().item() for k in whole)
    assert worst <= 1e-6, worst
    # resuming the finished run trains nothing more
    again = params(train(generator_config(tmp_path / "half", 2 * n, every=100, extra=data)) / "last.ckpt")
    assert all(torch.equal(again[k], resumed[k]) for k in resumed)


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path, fixtures_dir):
    train(generator_config(tmp_path, iterations=2))
    with pytest.raises(CheckpointError, match=r"last.ckpt: was written by another model configuration .*shape "
                                              r"mismatches.*resume=never.*out_dir"):
        train(generator_config(tmp_path, iterations=4, extra=["model.channel_max=8"]))
    with pytest.raises(CheckpointError, match="psp_tiny.pt: is not a Lightning training checkpoint.*resume=never"):
        train(generator_config(tmp_path, iterations=4, resume=str(fixtures_dir / "psp_tiny.pt")))


def test_outputs_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        out = train(generator_config(tmp_path, iterations=2))
    finally:
        os.umask(old)
    for name in ("last.ckpt", "generator.pt", "samples.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    import subprocess
    import sys

    overrides = [f"out_dir={tmp_path}", "trainer.accelerator=cpu", "trainer.devices=2",
                 "trainer.strategy=ddp", "model.max_iterations=4", "checkpoint_every=2",
                 "threads=1", "model.size=16", "model.style_dim=16", "model.n_mlp=2", "model.channel_max=16",
                 "data.batch_size=4", "data.toy.n_train=64", "data.toy.n_val=8", "data.pin_memory=false",
                 "+trainer.enable_progress_bar=false"]
    run = subprocess.run([sys.executable, "-m", "ganinv.commands.train_generator",
                          *overrides], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert int(ckpt["state_dict"]["iteration"]) == 4
    assert ckpt["ganinv"]["rank_disagreement"] == 0.0  # G and D agree on both ranks
    assert load_generator(tmp_path / "generator.pt").size == 16
