"""`ganinv-export RUN.ckpt OUT.pt`: a trained pSp / e4e / ReStyle run in the official checkpoint layout, so tools
built on the official files accept it; the export is read back with `load_official` and checked to give the same
codes."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganinv-export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a ganinv run checkpoint (<run_dir>/checkpoints/last.ckpt or best.ckpt)")
    parser.add_argument("output", help="the official-layout .pt to write")
    args = parser.parse_args(argv)
    import torch

    from ganinv.checkpoints import CheckpointError
    from ganinv.methods import export_official, load_method

    try:
        module = load_method(args.checkpoint)
        out = export_official(module, args.output)
        again = load_method(out)
    except (CheckpointError, ValueError) as e:
        print(f"ganinv-export: error: {e}", file=sys.stderr)
        return 2
    x = torch.rand(2, module.input_nc, module.input_size, module.input_size,
                   generator=torch.Generator().manual_seed(0)) * 2 - 1
    diff = float((module.invert(x) - again.invert(x)).abs().max())
    print(f"wrote {out} ({type(module).__name__}, encoder {type(module.encoder).__name__}); read back with "
          f"load_official: codes differ by {diff:.2e}")
    return 0 if diff <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
