"""Throughput of the data pipeline: images/s of the `images` source at 256 px (0 and 2 workers) and of the toy
renderer. Writes a folder of FFHQ-sized JPEGs (toy faces upscaled, plus grain) to a temporary folder first.

    python experiments/benchmarks/data.py [--n 256] [--size 1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganinv.data import StyleGAN2DataModule
from ganinv.toy import render


def write_jpegs(folder: Path, n: int, size: int) -> None:
    faces = render(n, 64, seed=0, frontal=False).images
    for i in range(n):
        big = F.interpolate(faces[i : i + 1], size=size, mode="bicubic", align_corners=False)[0]
        arr = ((big.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
        arr = np.clip(arr + np.random.default_rng(i).normal(0, 6, arr.shape), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:05d}.jpg", quality=90)


def pipeline_rate(folder: Path, workers: int, batch: int, task: str) -> float:
    dm = StyleGAN2DataModule("images", task, input_size=256, target_size=256, batch_size=batch, num_workers=workers,
                             persistent_workers=False, images={"root": folder, "val_fraction": 0.01})
    loader = dm.train_dataloader()
    it = iter(loader)
    next(it)  # worker start-up and the first batch are not throughput
    count, start = 0, time.perf_counter()
    for b in it:
        count += b["x"].shape[0]
    return count / (time.perf_counter() - start)


def render_rate(resolution: int, n: int, frontal: bool) -> float:
    render(64, resolution, seed=1, frontal=frontal)
    start = time.perf_counter()
    render(n, resolution, seed=2, frontal=frontal)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=256, help="number of JPEG files")
    ap.add_argument("--size", type=int, default=1024, help="side of the JPEG files (FFHQ: 1024)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)  # per-core figures
    results = {"threads_per_process": 1, "n_files": args.n, "file_size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), args.n, args.size)
        for workers in (0, 2):
            for task in ("inversion", "super_resolution"):
                key = f"images_{task}_256px_{workers}_workers"
                results[key] = round(pipeline_rate(Path(tmp), workers, args.batch, task), 1)
                print(f"{key}: {results[key]} images/s")
    for res in (32, 64):
        for frontal in (False, True):
            key = f"toy_render_{res}px" + ("_with_frontal" if frontal else "")
            results[key] = round(render_rate(res, 2000, frontal), 1)
            print(f"{key}: {results[key]} images/s (one core)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
