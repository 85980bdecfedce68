"""Training a StyleGAN2 with Lightning (what `ganinv-train-generator` runs; conf/train_generator.yaml).

Every `checkpoint_every` iterations and at the last one, written atomically into `out_dir`: `last.ckpt` (resumed
exactly by the next run with the same `out_dir`), `generator.pt` (the EMA generator with `latent_avg`, loadable by
`ganinv.checkpoints.load_generator`) and `samples.png` (fixed z, so grids are comparable over time).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger("ganinv")


def train(cfg) -> Path:
    """Train from a composed config; resumes from `<out_dir>/last.ckpt` when `resume=auto`. Returns `out_dir`."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from pytorch_lightning.loggers import CSVLogger

    from ganinv.workflows.trainer import check_trainer_options, make_trainer, quiet_lightning, resume_path

    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    check_trainer_options(trainer_cfg)
    quiet_lightning()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, datamodule = instantiate(cfg.model), instantiate(cfg.data)
    datamodule.setup("fit")  # bad folders and files are reported before any training starts
    ckpt = resume_path(out, str(cfg.resume), model)
    trainer = make_trainer(trainer_cfg, out, int(cfg.checkpoint_every),
                           CSVLogger(str(out), name="logs"), module=model)
    log.info("run folder %s%s", out, f", resuming from {ckpt}" if ckpt else "")
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    log.info("finished at iteration %d; wrote %s", int(model.iteration), out / "last.ckpt")
    return out
