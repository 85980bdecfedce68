"""`ganinv-train-generator`: train a StyleGAN2 with Lightning (conf/train_generator.yaml; the toy generator by default).

Every `checkpoint_every` iterations and at the end, written atomically into `out_dir`: `last.ckpt` (resumed
automatically by the next run with the same `out_dir`), `generator.pt` (the EMA generator with `latent_avg`,
loadable by `ganinv.stylegan2.load_generator`) and `samples.png` (fixed z, so grids are comparable over time).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
import torch

from ganinv.methods.gan import StyleGAN2GAN

CONF = str(Path(__file__).resolve().parent.parent / "conf")


class AtomicCheckpoint(pl.Callback):
    """Every `every` iterations: `last.ckpt`, `generator.pt` and `samples.png`, each replaced atomically."""

    def __init__(self, out_dir: str | os.PathLike, every: int = 500, n_samples: int = 64):
        self.dir, self.every, self.n_samples = Path(out_dir), int(every), n_samples

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if int(module.iteration) % self.every == 0:
            self.save(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        self.save(trainer, module)

    def save(self, trainer: pl.Trainer, module: StyleGAN2GAN) -> None:
        from torchvision.utils import save_image

        from ganinv.checkpoints import save_generator

        trainer.save_checkpoint(self.dir / ".last.ckpt.tmp")  # collective under DDP: every rank calls it
        if not trainer.is_global_zero:
            return
        os.replace(self.dir / ".last.ckpt.tmp", self.dir / "last.ckpt")
        g = module.export_generator()
        save_generator(g, self.dir / "generator.pt")
        z = torch.randn(self.n_samples, g.style_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            img, _ = g([z], randomize_noise=False)
        save_image(img.clamp(-1, 1) * 0.5 + 0.5, self.dir / ".samples.tmp.png", nrow=8)
        os.replace(self.dir / ".samples.tmp.png", self.dir / "samples.png")


def train(cfg) -> Path:
    """Train from a composed config; resumes from `<out_dir>/last.ckpt` when `resume=auto`. Returns `out_dir`."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from pytorch_lightning.loggers import CSVLogger

    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")
    pl.seed_everything(int(cfg.seed), workers=True)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model: StyleGAN2GAN = instantiate(cfg.model)
    trainer = pl.Trainer(**OmegaConf.to_container(cfg.trainer, resolve=True), default_root_dir=str(out),
                         enable_checkpointing=False, logger=CSVLogger(str(out), name="logs"),
                         callbacks=[AtomicCheckpoint(out, int(cfg.checkpoint_every))])
    last, resume = out / "last.ckpt", str(cfg.resume)
    ckpt = (str(last) if last.exists() else None) if resume == "auto" else (None if resume == "never" else resume)
    if ckpt is not None and not Path(ckpt).is_file():
        raise SystemExit(f"error: resume={ckpt}: no such checkpoint. Use resume=auto, resume=never or a .ckpt path.")
    trainer.fit(model, datamodule=instantiate(cfg.data), ckpt_path=ckpt)
    return out


def main() -> None:
    import hydra

    hydra.main(config_path=CONF, config_name="train_generator", version_base=None)(train)()


if __name__ == "__main__":
    main()
