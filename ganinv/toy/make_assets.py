"""Retrain every committed toy asset from scratch (`make toy-assets`), or re-score the committed toy generator.

    python -m ganinv.toy.make_assets [--out ganinv/toy/assets] [--run-dir runs/toy_gan]
                                     [--net-steps 1500] [--gan-iterations 6500] [--gan-batch 64]
    python -m ganinv.toy.make_assets --score-generator     # only (re)write the generator's scores

The three nets train first (the generator's scores use them), then the StyleGAN2 through
`ganinv-train-generator` (resumable: rerunning continues from `<run-dir>/last.ckpt`), on the GPU when one is
present. On 2 CPU cores the nets take about 25 minutes and the generator many hours; on one H200 the
generator's 6,441 iterations at batch 64 took 9 minutes.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from .generator import GENERATOR_FILE, generator_scores, load_generator
from .nets import ASSETS
from .train_nets import main as train_nets
from .train_nets import write_record


def train_generator(run_dir: Path, iterations: int, batch: int, workers: int) -> tuple[Path, dict]:
    overrides = [f"out_dir={run_dir}", f"model.max_iterations={iterations}", f"data.batch_size={batch}",
                 f"data.num_workers={workers}", "checkpoint_every=500"]
    start = time.time()
    subprocess.run([sys.executable, "-m", "ganinv.commands.train_generator", *overrides], check=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    info = {"command": "ganinv-train-generator " + " ".join(overrides), "iterations": iterations, "batch": batch,
            "images_seen": iterations * batch, "device": device, "torch": torch.__version__,
            "train_seconds_this_run": round(time.time() - start)}
    return run_dir / GENERATOR_FILE, info


def score_generator(out: Path, info: dict | None = None) -> dict:
    """Score the generator in `out` (toy FID, attribute match) and write its record entry (keeping `info`)."""
    g = load_generator(out / GENERATOR_FILE)
    scores = generator_scores(g, assets=out)
    record_path = out / "record.json"
    old = json.loads(record_path.read_text()).get("generator", {}) if record_path.exists() else {}
    entry = {**old, **(info or {}), "config": g.config, "scores": scores}
    write_record(out, "generator", entry)
    return scores


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ASSETS)
    ap.add_argument("--run-dir", type=Path, default=Path("runs/toy_gan"))
    ap.add_argument("--net-steps", type=int, default=1500)
    ap.add_argument("--gan-iterations", type=int, default=6500)
    ap.add_argument("--gan-batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="data-loader workers rendering toy faces")
    ap.add_argument("--score-generator", action="store_true", help="only score the generator in --out")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.score_generator:
        train_nets(["--net", "all", "--steps", str(args.net_steps), "--out", str(args.out)])
        path, info = train_generator(args.run_dir, args.gan_iterations, args.gan_batch, args.workers)
        shutil.copyfile(path, args.out / GENERATOR_FILE)
        print(json.dumps(score_generator(args.out, info), indent=2))
    else:
        print(json.dumps(score_generator(args.out), indent=2))


if __name__ == "__main__":
    main()
