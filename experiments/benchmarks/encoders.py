"""Forward + backward images/s of every encoder at official width (256 px input, 18 styles of 512, IR-SE50).

    python experiments/benchmarks/encoders.py [--batch 8] [--iters 3] [--devices cpu cuda]

Measures fp32 on CPU, and fp32 and bf16 autocast on CUDA when available; prints a table.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganinv.encoders import (
    BackboneEncoder,
    DomainGuidedEncoder,
    Encoder4Editing,
    GradualStyleEncoder,
    LatentCodesDiscriminator,
    ResNetBackboneEncoder,
)

ENCODERS = {
    "psp GradualStyleEncoder": (lambda: GradualStyleEncoder(50, "ir_se"), 3),
    "e4e Encoder4Editing": (lambda: Encoder4Editing(50, "ir_se"), 3),
    "restyle BackboneEncoder (IR-SE50)": (lambda: BackboneEncoder(50, "ir_se"), 6),
    "restyle ResNetBackboneEncoder (ResNet34)": (lambda: ResNetBackboneEncoder(), 6),
    "idinvert DomainGuidedEncoder": (lambda: DomainGuidedEncoder(256, n_styles=18), 3),
}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench(net: torch.nn.Module, channels: int, device: str, dtype: str, batch: int, iters: int) -> float:
    x = torch.randn(batch, channels, 256, 256, device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step() -> None:
        with autocast:
            out = net(x)
        out.float().square().mean().backward()

    step()  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    sync(device)
    return batch * iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}, 256 px")
    print(f"{'encoder':<42}{'device':>8}{'dtype':>7}{'images/s':>11}{'params (M)':>12}")
    for device in args.devices:
        if device == "cuda":
            torch.backends.cudnn.benchmark = True
        for name, (build, channels) in ENCODERS.items():
            net = build().to(device).train()
            params = sum(p.numel() for p in net.parameters()) / 1e6
            for dtype in ("fp32", "bf16") if device == "cuda" else ("fp32",):
                ips = bench(net, channels, device, dtype, args.batch, args.iters)
                print(f"{name:<42}{device:>8}{dtype:>7}{ips:>11.2f}{params:>12.1f}", flush=True)
    d = LatentCodesDiscriminator(512, 4)
    print(f"e4e LatentCodesDiscriminator: {sum(p.numel() for p in d.parameters()) / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
