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
COMMON = ["seed=7", "n_images=32", "editability.lec_images=8"]
OPTIMISERS = {"optim_w": "Optimisation (W)", "optim_wplus": "Optimisation (W+)"}
OPTIM = ["method.steps=100", "method.lr=0.05", "batch_size=32"]


def run(args: list[str], out: Path) -> None:
    if out.exists():
        return
    start = time.time()
    subprocess.run([str(Path(sys.executable).with_name("ganinv-eval")), *args, *COMMON, f"output={out}"],
                   check=True)
    print(f"== {out.relative_to(out.parents[2])}: {time.time() - start:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    for data, data_args in DATA.items():
        folder = args.out / "records" / data
        for name, label in OPTIMISERS.items():  # deterministic: one run each
            run([f"method={name}", f"name='{label}'", *OPTIM, *data_args], folder / f"{name}.json")
        for seed in args.seeds:
            for name, label in LABELS.items():
                ckpt = args.runs / name / f"seed{seed}" / "checkpoints" / "last.ckpt"
                run([f"checkpoint={ckpt}", f"name='{label}'", *data_args], folder / f"{name}_seed{seed}.json")
            ckpt = args.runs / "idinvert" / f"seed{seed}" / "checkpoints" / "last.ckpt"
            run([f"checkpoint={ckpt}", "refine=idinvert", "name='In-Domain + regularised optimiser'", *data_args],
                folder / f"idinvert_refine_seed{seed}.json")


if __name__ == "__main__":
    main()
