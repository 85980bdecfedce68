"""Train the toy attribute, identity and perceptual nets on fresh renders (CPU, minutes each).

    python -m ganinv.toy.train_nets --net all [--steps 1500] [--out ganinv/toy/assets]

Writes `<net>_net.pt` (state dict + config, written atomically) and the net's entry in `record.json`: how it was
trained and what it scored on fresh renders (`ganinv.toy.scores`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import kornia
import torch
import torch.nn.functional as F

from ganinv.checkpoints.safe_io import atomic_save

from .attributes import normalise, resample_editable, sample_attributes
from .nets import ASSETS, NETS
from .render import render_attributes
from .scores import EVAL_SEED, attribute_scores, identity_scores, perceptual_scores


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Blur, noise and 32-px round trips: the nets must also judge generator samples and reconstructions."""
    n = x.shape[0]
    sigma = 0.3 + 0.9 * torch.rand(n, generator=g)
    blurred = kornia.filters.gaussian_blur2d(x, (5, 5), torch.stack([sigma, sigma], 1))
    x = torch.where((torch.rand(n, 1, 1, 1, generator=g) < 0.3), blurred, x)
    small = F.interpolate(F.interpolate(x, 32, mode="area"), 64, mode="bilinear", align_corners=False)
    x = torch.where((torch.rand(n, 1, 1, 1, generator=g) < 0.25), small, x)
    noise = torch.randn(x.shape, generator=g) * 0.05 * torch.rand(n, 1, 1, 1, generator=g)
    return (x + noise).clamp(-1, 1)


def attribute_loss(net, step: int, batch: int, g: torch.Generator) -> torch.Tensor:
    attrs = sample_attributes(batch, g)
    images, _ = render_attributes(attrs, 64)
    # Soft targets on the [0, 1] scale: regression and the binary glasses label under one loss.
    return F.binary_cross_entropy_with_logits(net.logits(augment(images, g)), normalise(attrs))


def identity_loss(net, step: int, batch: int, g: torch.Generator, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE: the same identity under other editable factors is the positive, other identities negatives."""
    attrs = sample_attributes(batch // 2, g)
    views = torch.cat([attrs, resample_editable(attrs, g)])
    emb = net(augment(render_attributes(views, 64)[0], g))
    sim = emb @ emb.T / temperature
    sim.fill_diagonal_(float("-inf"))
    k = batch // 2
    target = torch.cat([torch.arange(k, 2 * k), torch.arange(k)])
    return F.cross_entropy(sim, target)


def perceptual_loss(net, step: int, batch: int, g: torch.Generator) -> torch.Tensor:
    attrs = sample_attributes(batch, g)
    images, labels = render_attributes(attrs, 64)
    seg, att = net.training_outputs(augment(images, g))
    labels = F.interpolate(labels[:, None].float(), size=seg.shape[-1], mode="nearest")[:, 0].long()
    return F.cross_entropy(seg, labels) + F.binary_cross_entropy_with_logits(att, normalise(attrs))


LOSSES = {"attribute": attribute_loss, "identity": identity_loss, "perceptual": perceptual_loss}
SCORES = {"attribute": attribute_scores, "identity": identity_scores, "perceptual": perceptual_scores}


def train(name: str, steps: int, batch: int, lr: float, seed: int, log_every: int = 100) -> tuple[torch.nn.Module,
                                                                                                 dict]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)  # one stream of fresh faces; scores use separately seeded ones
    net = NETS[name]()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    start, history = time.time(), []
    for step in range(steps):
        loss = LOSSES[name](net, step, batch, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            history.append([step, round(loss.item(), 4)])
            print(f"[{name}] step {step:5d}  loss {loss.item():.4f}  {time.time() - start:6.0f}s", flush=True)
    info = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "optimizer": "Adam + one-cycle",
            "train_seconds": round(time.time() - start), "loss_history": history}
    return net.eval(), info


def write_record(out: Path, name: str, entry: dict) -> None:
    path = out / "record.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record[name] = entry
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".record.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the toy nets on fresh renders.")
    ap.add_argument("--net", choices=[*NETS, "all"], default="all")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 leaves cores for other work)")
    ap.add_argument("--out", type=Path, default=ASSETS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in NETS if args.net == "all" else [args.net]:
        net, info = train(name, args.steps, args.batch, args.lr, args.seed)
        scores = SCORES[name](net, seed=EVAL_SEED)
        print(f"[{name}] scores on fresh renders: {json.dumps(scores)}", flush=True)
        atomic_save({"state_dict": net.state_dict(), "config": {}}, args.out / f"{name}_net.pt")
        write_record(args.out, f"{name}_net", {**info, "scores": scores, "torch": torch.__version__,
                                               "threads": args.threads, "machine": platform.machine(),
                                               "command": f"python -m ganinv.toy.train_nets --net {name} "
                                                          f"--steps {args.steps} --batch {args.batch}"})


if __name__ == "__main__":
    main()
