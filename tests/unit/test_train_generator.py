"""The StyleGAN2 trainer runs real steps, exports a loadable generator, and resumes where it stopped."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from ganinv.checkpoints import load_generator
from ganinv.train_generator import CONF, train


def config(run_dir: Path, steps: int):
    with initialize_config_dir(CONF, version_base=None):
        return compose("train_generator", overrides=[
            f"run_dir={run_dir}", f"steps={steps}", "checkpoint_every=2", "model.size=16", "model.style_dim=16",
            "model.n_mlp=2", "model.channel_max=16", "model.path_regularize=1.0", "model.d_reg_every=2",
            "model.g_reg_every=2", "data.batch_size=4", "data.toy.n_train=64", "data.toy.n_val=8",
            "data.pin_memory=false", "data.persistent_workers=false", "+trainer.enable_progress_bar=false",
            "+trainer.enable_model_summary=false", "trainer.accelerator=cpu", "trainer.devices=1"])


def test_train_export_and_resume(tmp_path):
    run_dir = train(config(tmp_path, steps=4))
    assert (run_dir / "last.ckpt").exists() and (run_dir / "samples_final.png").exists()
    g = load_generator(run_dir / "generator.pt")
    assert g.size == 16 and g.latent_avg.shape == (16,)
    first = torch.load(run_dir / "last.ckpt", weights_only=False)  # our own file, just written
    assert first["global_step"] == 8  # one D and one G update per step
    ema, live = first["state_dict"]["g_ema.conv1.conv.weight"], first["state_dict"]["generator.conv1.conv.weight"]
    assert 0 < (ema - live).abs().max()  # the moving average lags the trained weights

    train(config(tmp_path, steps=6))  # same run folder: continues from last.ckpt
    second = torch.load(run_dir / "last.ckpt", weights_only=False)
    assert second["global_step"] == 12
    assert second["state_dict"]["generator.conv1.conv.weight"].ne(
        first["state_dict"]["generator.conv1.conv.weight"]).any()
