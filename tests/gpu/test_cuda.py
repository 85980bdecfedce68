"""The generator and the GAN's training on the device (`pytest -m gpu`, `make gpu-check`): the official
generators' reference images within the CPU tests' tolerances, bf16 autocast close, GAN training steps run."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganinv.checkpoints import load_generator
from ganinv.methods.gan import StyleGAN2GAN

pytestmark = pytest.mark.gpu


def test_official_references_reproduced_on_the_device(fixtures_dir, device):
    g = load_generator(fixtures_dir / "rosinality_tiny.pt").to(device)
    ref = torch.load(fixtures_dir / "rosinality_tiny_ref.pt", weights_only=True)
    noise = [ref[f"noise_{i}"].to(device) for i in range(int(ref["num_noise_layers"]))]
    out = g([ref["wplus"].to(device)], input_is_latent=True, noise=noise)[0]
    assert_close(out.cpu(), ref["img_wplus_noise"], rtol=0, atol=1e-4)

    g = load_generator(fixtures_dir / "nvidia_tiny.pt").to(device)
    ref = torch.load(fixtures_dir / "nvidia_tiny_ref.pt", weights_only=True)
    out = g([ref["ws_given"].to(device)], input_is_latent=True, randomize_noise=False)[0]
    assert_close(out.cpu(), ref["img_ws_given_const"], rtol=0, atol=1e-4)


def test_bf16_autocast_generator_stays_close(fixtures_dir, device):
    g = load_generator(fixtures_dir / "rosinality_tiny.pt").to(device)
    z = torch.randn(8, g.style_dim, device=device)
    with torch.no_grad():
        ref = g([z], randomize_noise=False)[0]
        with torch.autocast(device, dtype=torch.bfloat16):
            low = g([z], randomize_noise=False)[0].float()
    assert (low - ref).abs().mean() < 0.05


def test_gan_training_steps_on_the_device(device):
    import pytorch_lightning as pl

    module = StyleGAN2GAN(size=32, style_dim=32, n_mlp=2, channel_max=32, path_regularize=2.0, d_reg_every=2,
                          g_reg_every=2, max_iterations=4)
    data = [{"y": torch.rand(4, 3, 32, 32) * 2 - 1} for _ in range(4)]
    trainer = pl.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    assert int(module.iteration) == 4 and module.mean_path_length.item() > 0
    g = module.export_generator()
    assert next(g.parameters()).device.type == "cpu" and torch.isfinite(g.latent_avg).all()
