"""CUDA checks (run with `pytest -m gpu` on a machine with a GPU): same numerics as the CPU path, training works."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganinv.checkpoints import load_generator
from ganinv.methods.gan import StyleGAN2GAN

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(autouse=True)
def exact_matmul():
    """TF32 would change the last bits; the fixture tolerances are for float32."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def test_official_references_reproduced_on_cuda(fixtures_dir):
    g = load_generator(fixtures_dir / "rosinality_tiny.pt").cuda()
    ref = torch.load(fixtures_dir / "rosinality_tiny_ref.pt", weights_only=True)
    noise = [ref[f"noise_{i}"].cuda() for i in range(int(ref["num_noise_layers"]))]
    out = g([ref["wplus"].cuda()], input_is_latent=True, noise=noise)[0]
    assert_close(out.cpu(), ref["img_wplus_noise"], rtol=0, atol=1e-4)

    g = load_generator(fixtures_dir / "nvidia_tiny.pt").cuda()
    ref = torch.load(fixtures_dir / "nvidia_tiny_ref.pt", weights_only=True)
    out = g([ref["ws_given"].cuda()], input_is_latent=True, randomize_noise=False)[0]
    assert_close(out.cpu(), ref["img_ws_given_const"], rtol=0, atol=1e-4)


def test_bf16_autocast_generator_stays_close(fixtures_dir):
    g = load_generator(fixtures_dir / "rosinality_tiny.pt").cuda()
    z = torch.randn(8, g.style_dim, device="cuda")
    with torch.no_grad():
        ref = g([z], randomize_noise=False)[0]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = g([z], randomize_noise=False)[0].float()
    assert (low - ref).abs().mean() < 0.05


def test_gan_training_steps_on_cuda():
    import pytorch_lightning as pl

    module = StyleGAN2GAN(size=32, style_dim=32, n_mlp=2, channel_max=32, path_regularize=2.0, d_reg_every=2,
                          g_reg_every=2, max_iterations=4)
    data = [{"y": torch.rand(4, 3, 32, 32) * 2 - 1} for _ in range(4)]
    trainer = pl.Trainer(accelerator="gpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    assert int(module.iteration) == 4 and module.mean_path_length.item() > 0
    g = module.export_generator()
    assert next(g.parameters()).device.type == "cpu" and torch.isfinite(g.latent_avg).all()
