"""Training images/s and peak memory per method and speed option (`speed.*` of ganinv-train: fp32, channels_last,
bf16 autocast, torch.compile): the toy size (64 px, narrow encoders) and 256 px with the official widths; CPU here,
CUDA when one is present (`python experiments/benchmarks/train_step.py [--steps N] [--options ...]`)."""

from __future__ import annotations

import argparse
import resource
import time

import torch
from hydra import compose, initialize_config_dir

from ganinv.configs import CONF
from ganinv.methods import method_from_config
from ganinv.stylegan2 import Generator
from ganinv.stylegan2.layers import batched_modconv
from ganinv.workflows.training import build

METHODS = ["psp", "psp_w", "e4e", "restyle_psp", "restyle_e4e", "idinvert"]


OPTIONS = {"fp32": [], "channels_last": ["speed.channels_last=true"], "bf16": ["speed.autocast=bf16"],
           "bf16+channels_last": ["speed.autocast=bf16", "speed.channels_last=true"], "compile": ["speed.compile=true"]}


def make(method: str, size: str, batch: int, option: str = "fp32"):
    """(module, datamodule): the toy recipe, or 256 px with the official widths against a random 256-px config-f
    generator (14 W+ layers) and the toy loss nets (LPIPS / ArcFace weights are not shipped)."""
    if size == "toy":
        overrides = [f"experiment=toy_{method}"]
    else:
        overrides = [f"method={method}", "loss/perceptual=toy", "loss/identity=toy", "data.input_size=256",
                     "data.target_size=256", "data.toy.resolution=256"]
    with initialize_config_dir(CONF, version_base=None):
        cfg = compose("train", overrides=[*overrides, f"data.batch_size={batch}", "data.toy.n_train=64",
                                          "data.toy.n_val=4", *OPTIONS[option]])
    if size == "toy":
        return build(cfg)
    from hydra.utils import instantiate

    g = Generator(256, 512, 8, 2).eval()
    g.latent_avg = g.mean_latent(1000)[0]
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = method_from_config(cfg.method, g, cfg.loss, input_nc=3, input_size=256, max_iterations=10**9)
    model.use_speed(**cfg.speed)
    return model, dm


def measure(method: str, size: str, device: str, batch: int, steps: int, option: str = "fp32") -> tuple[float, float]:
    """Images/s of `train_step` (forward, backward and optimiser steps, the discriminators' included)."""
    model, dm = make(method, size, batch, option)
    model = model.to(device).train()
    batch_data = {k: v.to(device) if torch.is_tensor(v) else v for k, v in next(iter(dm.train_dataloader())).items()}
    opts = model.configure_optimizers()
    opts = opts if isinstance(opts, (list, tuple)) else [opts]
    # train_step outside Trainer.fit: the few Lightning calls it makes, done directly.
    model.optimizers = lambda: opts if len(opts) > 1 else opts[0]
    model.manual_backward = lambda loss: loss.backward()
    model.log = model.log_dict = lambda *a, **k: None
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=model.autocast)
        with autocast, batched_modconv():  # as training_step
            loss = model.train_step(batch_data)
        if loss is not None:  # automatic optimisation: the step Lightning would take
            opts[0].zero_grad()
            loss.backward()
            opts[0].step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return batch * len(times) / sum(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=["toy", "256"])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--options", nargs="+", default=["fp32"], choices=list(OPTIONS))
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    memory = "peak GPU memory" if device == "cuda" else "process peak RSS so far"
    print(f"| method | size | batch | option | images/s ({device}) | vs fp32 | {memory} (GiB) |\n"
          "|---|---|---|---|---|---|---|")
    for size in args.sizes:
        batch = 16 if size == "toy" else (8 if device == "cuda" else 2)
        for method in args.methods:
            base = None
            for option in args.options:
                ips, peak = measure(method, size, device, batch, args.steps, option)
                base = base or (ips if option == "fp32" else None)
                gain = f"{100 * (ips / base - 1):+.0f} %" if base and option != "fp32" else ""
                print(f"| {method} | {'64 (toy)' if size == 'toy' else '256 (official widths)'} | {batch} | "
                      f"{option} | {ips:.2f} | {gain} | {peak:.2f} |", flush=True)


if __name__ == "__main__":
    main()
