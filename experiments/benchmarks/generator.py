"""Images/s of the StyleGAN2 generator forward (random weights, config-f widths).

    python experiments/benchmarks/generator.py [--sizes 256 1024] [--batch 8] [--iters 3]

Measures fp32 and bf16 autocast on CPU, and on CUDA when available; prints a table.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganinv.stylegan2 import Generator


def bench(g: Generator, device: str, dtype: str, batch: int, iters: int) -> float:
    z = torch.randn(batch, g.style_dim, device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=dtype == "bf16")
    with torch.no_grad(), autocast:
        g([z])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            g([z])
        if device == "cuda":
            torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}")
    print(f"{'device':<8}{'size':>6}{'dtype':>7}{'images/s':>12}")
    for device in args.devices:
        for size in args.sizes:
            g = Generator(size, 512, 8, channel_multiplier=2).to(device).eval()
            for dtype in ("fp32", "bf16"):
                ips = bench(g, device, dtype, args.batch, args.iters)
                print(f"{device:<8}{size:>6}{dtype:>7}{ips:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
