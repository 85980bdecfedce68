"""Evaluate every trained run of the study (and the optimisers) with `ganinv-eval` on held-out renders and held-out
generator samples; records go to <out>/records/<renders|samples>/. Existing records are kept (delete to redo).

    python experiments/reproductions/toy_tradeoff/evaluate.py [--seeds 0 1 2] [--runs .../runs] [--out ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = {"psp": "pSp (W+)", "psp_w": "pSp (W)", "e4e": "e4e", "restyle_psp": "ReStyle-pSp",
          "restyle_e4e": "ReStyle-e4e", "idinvert": "In-Domain encoder"}
DATA = {"renders": ["data=toy"], "samples": ["data=generated", "data.input_size=64", "data.target_size=64"]}
# The held-out images: data seed 7 (renders / samples of seed 1,000,007; training used seeds 0-2 and their
# validation sets 1,000,000-1,000,002); 32 images, LEC on 8 of them per direction. Optimisers: 100 Adam steps at
# lr 0.05 (MSE + toy perceptual) from the average code, all images at once (each image's loss is its own).
COMMON = ["seed=7"]
FAST = ["n_images=32", "editability.lec_images=8"]
OPTIMISERS = {"optim_w": "Optimisation (W)", "optim_wplus": "Optimisation (W+)"}
OPTIM = ["method.steps=100", "method.lr=0.05", "batch_size=16"]
# Methods that optimise (each inversion, and each LEC re-inversion, is 100 Adam steps through the generator):
# the first 16 of the same held-out images, LEC on 4 of them. Generator samples: the first seed only (time).
SLOW = ["n_images=16", "editability.lec_images=4"]


def run(args: list[str], out: Path, slow: bool = False) -> None:
    if out.exists():
        return
    start = time.time()
    subprocess.run([str(Path(sys.executable).with_name("ganinv-eval")), *COMMON, *args, *(SLOW if slow else FAST),
                    f"output={out}"], check=True)
    print(f"== {out.relative_to(out.parents[2])}: {time.time() - start:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--refine-seeds", type=int, default=3, help="seeds of the regularised optimiser")
    ap.add_argument("--slow-on-samples", action="store_true", help="the optimisers on generator samples too")
    args = ap.parse_args()
    for data, data_args in DATA.items():  # the encoders first: quick; generator samples for the first seed only
        for seed in args.seeds if data == "renders" else args.seeds[:1]:
            for name, label in LABELS.items():
                ckpt = args.runs / name / f"seed{seed}" / "checkpoints" / "last.ckpt"
                run([f"checkpoint={ckpt}", f"name='{label}'", *data_args],
                    args.out / "records" / data / f"{name}_seed{seed}.json")
    for data, data_args in list(DATA.items())[: 2 if args.slow_on_samples else 1]:
        folder = args.out / "records" / data
        for name, label in OPTIMISERS.items():  # deterministic: one run each
            run([f"method={name}", f"name='{label}'", *OPTIM, *data_args], folder / f"{name}.json", slow=True)
        for seed in args.seeds[: args.refine_seeds]:
            ckpt = args.runs / "idinvert" / f"seed{seed}" / "checkpoints" / "last.ckpt"
            run([f"checkpoint={ckpt}", "refine=idinvert", "name='In-Domain + regularised optimiser'", *data_args],
                folder / f"idinvert_refine_seed{seed}.json", slow=True)

if __name__ == "__main__":
    main()
