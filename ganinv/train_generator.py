"""`ganinv-train-generator`: train a StyleGAN2 with Lightning (resumable); exports `generator.pt`."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torchvision.utils import save_image

from ganinv.checkpoints import save_generator
from ganinv.methods.gan import StyleGAN2GAN

CONF = str(Path(__file__).resolve().parent.parent / "conf")


class ExportGenerator(Callback):
    """Every `every` steps and at the end: a sample grid and `generator.pt` (g_ema with its latent_avg)."""

    def __init__(self, run_dir: Path, every: int):
        self.run_dir, self.every = run_dir, every

    def on_train_batch_end(self, trainer, module: StyleGAN2GAN, *args) -> None:
        step = trainer.global_step // 2
        if step % self.every == 0 and trainer.is_global_zero:
            self.export(module, f"samples_{step:06d}.png")

    def on_train_end(self, trainer, module: StyleGAN2GAN) -> None:
        if trainer.is_global_zero:
            self.export(module, "samples_final.png")

    def export(self, module: StyleGAN2GAN, grid_name: str) -> None:
        g = module.g_ema
        g.latent_avg = g.mean_latent(10_000)[0]
        save_image(module.sample(64).clamp(-1, 1) * 0.5 + 0.5, self.run_dir / grid_name, nrow=8)
        save_generator(g, self.run_dir / "generator.pt")


def train(cfg: DictConfig) -> Path:
    """Build the module, data and trainer from `cfg`, train (resuming when asked) and return the run folder."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    module: StyleGAN2GAN = instantiate(cfg.model)
    data = instantiate(cfg.data)
    checkpoint = ModelCheckpoint(dirpath=run_dir, save_last=True, save_top_k=0,
                                 every_n_train_steps=2 * cfg.checkpoint_every)  # two optimizer steps per batch
    trainer = pl.Trainer(max_steps=2 * cfg.steps, logger=CSVLogger(run_dir, name="logs"),
                         callbacks=[checkpoint, ExportGenerator(run_dir, cfg.checkpoint_every)],
                         **cfg.trainer)
    ckpt = None
    if cfg.resume == "auto" and (run_dir / "last.ckpt").exists():
        ckpt = str(run_dir / "last.ckpt")
    elif cfg.resume not in ("auto", "never"):
        ckpt = str(cfg.resume)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    return run_dir


@hydra.main(config_path=CONF, config_name="train_generator", version_base=None)
def _main(cfg: DictConfig) -> None:
    train(cfg)


def main() -> None:
    sys.exit(_main())


if __name__ == "__main__":
    main()
