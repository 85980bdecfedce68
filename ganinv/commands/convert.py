"""`ganinv-convert SRC DST`: rewrite any supported StyleGAN2 generator checkpoint in ganinv's format.

The output holds `g_ema` (rosinality keys), `latent_avg` and the architecture, and loads with
`torch.load(DST, weights_only=True)` as well as with `ganinv.checkpoints.load_generator(DST)`.
"""

from __future__ import annotations

import argparse
import sys
import warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganinv-convert", description=__doc__.splitlines()[0])
    parser.add_argument("src", help="rosinality .pt, NVIDIA .pkl / state dict, or pSp/e4e/ReStyle .pt")
    parser.add_argument("dst", help="output .pt")
    for name in ("size", "style_dim", "n_mlp", "channel_multiplier", "channel_max"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name,
                            help="architecture override (inferred from the file when omitted)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in ("src", "dst") and v is not None}
    from ganinv.checkpoints import CheckpointError, load_generator, save_generator

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            g = load_generator(args.src, **overrides)
    except CheckpointError as e:
        print(f"ganinv-convert: error: {e}", file=sys.stderr)
        return 2
    out = save_generator(g, args.dst)
    print(f"wrote {out}: {g.size}px, style_dim {g.style_dim}, {g.n_latent} latents, "
          f"{sum(p.numel() for p in g.parameters()):,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
