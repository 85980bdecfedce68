"""Toy training configurations the tests share: `config` (a recipe composed in this process, quiet), `SWEEP_TINY`
(a sweep job's options), `generator_config` (`ganinv-train-generator` at 16 px), and `train` (short trainings on 1
or N CPU processes with gloo, for the DDP parity tests and the scaling benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from ganinv.configs import CONF

# Torch threads of a training in a test: one per test process when pytest-xdist runs several (two processes of two
# threads each on two cores run a matmul 6x slower than one process), else two.
THREADS = "threads=1" if os.environ.get("PYTEST_XDIST_WORKER") else "threads=2"
QUIET = ["+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", "logger=none", THREADS,
         "data.toy.n_val=32", "resume=never", "callbacks.metrics.every=0", "callbacks.images.every=0"]
SWEEP_TINY = ["method.encoder.widths=[8,8,12,16]", "data.batch_size=4", "data.toy.n_train=32", "data.toy.n_val=8",
              THREADS, "callbacks.images.every=0", "+trainer.enable_progress_bar=false",
              "+trainer.enable_model_summary=false", "trainer.max_steps=2", "trainer.val_check_interval=1",
              "callbacks.metrics.n_images=4", "editability.lec_images=2", "editability.p_norm_samples=100",
              "fid=none"]


def config(experiment: str, run_dir: Path, steps: int, *extra: str):
    """`ganinv-train experiment=<experiment>` for `steps` iterations into `run_dir`, quiet (`QUIET`, unless
    `extra` sets those keys), with `extra` overrides."""
    keys = {e.split("=")[0] for e in extra}
    quiet = [q for q in QUIET if q.split("=")[0] not in keys]
    with initialize_config_dir(CONF, version_base=None):
        return compose("train", overrides=[f"experiment={experiment}", f"trainer.max_steps={steps}",
                                           f"run_dir={run_dir}", *quiet, *extra])


def generator_config(out_dir: Path, iterations: int, resume: str = "auto", every: int = 2, extra=()):
    """`ganinv-train-generator` of a 16-px toy StyleGAN2 for `iterations` into `out_dir`."""
    with initialize_config_dir(CONF, version_base=None):
        return compose("train_generator", overrides=[
            f"out_dir={out_dir}", f"resume={resume}", f"model.max_iterations={iterations}", f"checkpoint_every={every}",
            "threads=1", "model.size=16", "model.style_dim=16", "model.n_mlp=2", "model.channel_max=16",
            "model.path_regularize=1.0", "model.d_reg_every=2", "model.g_reg_every=2", "data.batch_size=4",
            "data.toy.n_train=64", "data.toy.n_val=8", "data.pin_memory=false", "data.persistent_workers=false",
            "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", "trainer.accelerator=cpu",
            "trainer.devices=1", *extra])


# Small encoders and few iterations: what parity and the quick tests' runs need is every loss term and optimiser
# at work, not quality.
SMALL = {
    "toy_psp": ["method.encoder.widths=[8,8,12,16]"],
    "toy_psp_w": ["method.encoder.widths=[8,8,12,16]"],
    "toy_e4e": ["method.encoder.widths=[8,8,12,16]", "method.progressive_start=1", "method.progressive_step_every=1",
                "loss.r1.every=2"],
    "toy_lsap": ["method.encoder.widths=[8,8,12,16]", "method.progressive_start=1", "method.progressive_step_every=1",
                 "method.anchor_samples=2000"],
    "toy_restyle_psp": ["method.encoder.widths=[8,8,12,16]"],
    "toy_restyle_e4e": ["method.encoder.widths=[8,8,12,16]", "method.progressive_start=1",
                        "method.progressive_step_every=1", "loss.r1.every=2"],
    "toy_idinvert": ["method.encoder.channel_max=32", "method.discriminator.channel_max=32", "loss.r1.every=2"],
    # on a base e4e: the caller adds method.base=<its checkpoint>
    "toy_hyperstyle": ["method.encoder.widths=[8,8,12,16]", "method.encoder.hyper_dim=16",
                       "method.n_iters_per_batch=2"],
    "toy_hfgi": ["method.encoder.residue_widths=[8,8,12]", "method.encoder.align_widths=[8,8,8,8]"],
    "toy_styleres": ["method.encoder.width=8"],
    # SFE: its editor phase from the second iteration, so that two iterations train both phases
    "toy_sfe": ["method.encoder.widths=[8,8,12,16]", "method.encoder.depth=2", "method.editor_from=1",
                "method.feature_warmup=2"],
    "toy_feature_style": ["method.encoder.widths=[8,8,12,16]", "method.feature_warmup=2"],
}
RECIPES = sorted(p.stem for p in (Path(CONF) / "experiment").glob("toy_*.yaml"))  # toy_e4e before those on it
ON_BASE = ("toy_hfgi", "toy_hyperstyle", "toy_sfe", "toy_styleres")  # they start from a trained e4e (method.base)
EXPERIMENTS = tuple(k for k in SMALL if k not in ON_BASE)


def train(run_dir: Path, experiment: str, processes: int, steps: int = 3, batch: int = 8,
          extra: tuple[str, ...] = (), timeout: int = 600, small: bool = True) -> dict[str, torch.Tensor]:
    """Train `experiment` (`small`: with narrow networks) for `steps` iterations of the global `batch` on
    `processes` CPU processes; the state dict of its last checkpoint (its `ganinv` metadata under "ganinv")."""
    overrides = [f"experiment={experiment}", f"run_dir={run_dir}", f"trainer.max_steps={steps}",
                 f"data.batch_size={batch}", f"callbacks.checkpoint_every={steps}", "trainer.val_check_interval=1000",
                 "data.toy.n_train=64", "data.toy.n_val=8", "threads=1", "logger=none", "resume=never",
                 "callbacks.metrics.every=0", "callbacks.images.every=0",
                 *(SMALL[experiment] if small else ()), *extra]
    if processes > 1:
        overrides += ["trainer=ddp", "trainer.accelerator=cpu", f"trainer.devices={processes}"]
    run = subprocess.run([sys.executable, "-m", "ganinv.commands.train", *overrides], capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        raise AssertionError(f"{experiment} on {processes} process(es) failed:\n{run.stderr[-4000:]}")
    assert "Grad strides do not match" not in run.stderr, run.stderr[-4000:]  # see ganinv.workflows.trainer._QUIET
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return {**ckpt["state_dict"], "ganinv": ckpt.get("ganinv", {})}


def max_difference(a: dict, b: dict, prefixes: tuple[str, ...] = ("encoder.", "regularisers.discriminator.",
                                                                  "discriminator.")) -> float:
    """The largest absolute difference between the trained parameters of two state dicts."""
    keys = [k for k in a if k.startswith(prefixes) and torch.is_floating_point(a[k])]
    assert keys and set(keys) <= set(b)
    return max(float((a[k] - b[k]).abs().max()) for k in keys)
