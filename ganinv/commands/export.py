"""`ganinv-export RUN.ckpt OUT.pt`: a trained pSp / e4e / ReStyle run in the official checkpoint layout, with the
options the official inference scripts read; the export is read back with `load_official` and must give the same
codes, else it is removed and the command exits 1."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run_task(checkpoint: Path) -> str:
    """The run's `data.task` from `<run_dir>/config.yaml` beside `<run_dir>/checkpoints/`, else inversion."""
    config = checkpoint.resolve().parent.parent / "config.yaml"
    if not config.is_file():
        return "inversion"
    from omegaconf import OmegaConf

    return str(OmegaConf.select(OmegaConf.load(config), "data.task", default="inversion"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganinv-export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a ganinv run checkpoint (<run_dir>/checkpoints/last.ckpt or best.ckpt)")
    parser.add_argument("output", help="the official-layout .pt to write")
    parser.add_argument("--task", default=None, help="the run's task, for the official dataset_type (default: the "
                        "run's config.yaml, else inversion)")
    args = parser.parse_args(argv)
    import torch

    from ganinv.checkpoints import CheckpointError
    from ganinv.methods import export_official, load_method

    out = Path(args.output)
    try:
        module = load_method(args.checkpoint)
        export_official(module, out, args.task or run_task(Path(args.checkpoint)))
        again = load_method(out)
    except (CheckpointError, ValueError) as e:
        print(f"ganinv-export: error: {e}", file=sys.stderr)
        return 2
    x = torch.rand(2, module.input_nc, module.input_size, module.input_size,
                   generator=torch.Generator().manual_seed(0)) * 2 - 1
    diff = float((module.invert(x).codes - again.invert(x).codes).abs().max())
    if diff > 1e-5:
        out.unlink()
        print(f"ganinv-export: error: the export read back gives codes that differ by {diff:.2e} (> 1e-5); {out} "
              "was removed. Please report this with the checkpoint.", file=sys.stderr)
        return 1
    print(f"wrote {out} ({type(module).__name__}, encoder {type(module.encoder).__name__}); read back with "
          f"load_official: codes differ by {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
