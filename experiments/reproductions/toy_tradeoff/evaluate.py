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
          "restyle_e4e": "ReStyle-e4e", "idinvert": "In-Domain encoder", "hyperstyle": "HyperStyle",
          "hfgi": "HFGI"}  # the study's first records (records/renders, samples)
DATA = {"renders": ["data=toy"], "samples": ["data=generated", "data.input_size=64", "data.target_size=64"]}
# The held-out images: data seed 7 (renders / samples of seed 1,000,007; training used seeds 0-2 and their
# validation sets 1,000,000-1,000,002); 32 images, LEC on 8 of them per direction. Optimisers: 100 Adam steps at
# lr 0.05 (MSE + toy perceptual) from the average code, all images at once (each image's loss is its own).
DATA_SEED = 7
FAST = ["n_images=32", "editability.lec_images=8"]
OPTIMISERS = {"optim_w": "Optimisation (W)", "optim_wplus": "Optimisation (W+)"}
OPTIM = ["refine.lr=0.05", "batch_size=16"]
STEPS = 100
# Methods that optimise (each inversion, and each LEC re-inversion, is 100 Adam steps through the generator):
# the first 16 of the held-out images, LEC on 4 of them. The plain optimisers are deterministic given the images
# (they start from the average code), so their three "seeds" are three held-out sets: data seeds 7, 8 and 9.
SLOW = ["n_images=16", "editability.lec_images=4"]
# In-Domain's optimiser from its encoder's codes (the recipe's 100 steps at lr 0.01), with its domain regulariser
# and, to isolate the regulariser, without it (the same optimisation, encoder_weight 0).
REFINE = {"idinvert_refine": ("In-Domain + regularised optimiser", []),
          "idinvert_unreg": ("In-Domain + unregularised optimiser", ["refine.encoder_weight=0"])}
# PTI at the official settings (350 steps at lr 3e-4, locality regulariser every step), on the first 16 images:
# after the same seed's e4e run, and on the W pivot of the plain W optimiser above (100 steps at lr 0.05) as in the
# paper. Tuning never moves codes, so their LEC re-inverts only as far as the pivot (exact, not an approximation).
# On the renders only: about 6 minutes per record on two CPU cores.
PTI = {"e4e_pti": ("e4e + PTI", "e4e"), "pti_w": ("PTI (W pivot)", None)}
PTI_W = ["refine.pivot=w", f"refine.pivot_steps={STEPS}", "refine.pivot_lr=0.05"]
# The check of optimisation's editability at a longer budget: 500 steps (ganinv's default for the W / W+
# optimisers), renders of data seed 7, one run each.
LONG_STEPS = 500
# GAN Inverter's methods (added with LSAP, SAM and DHR), in records/toolbox: today's records carry a metric card,
# which the records above predate, so they are ranked on their own, against an e4e retrained and re-evaluated with
# the same code. Renders only. LSAP: the e4e recipe with its alignment loss, as the encoders above. The refiners
# after each seed's e4e, on the first 16 images with LEC on 4: PTI and DHR at their official settings; SAM at
# SAM_STEPS of its 1001 steps (CPU time), with a predictor per seed made by ganinv-train-invertibility from the
# first 24 training renders' single-space inversions of 200 steps (docs/inversion.md#sam's; the authors: thousands
# of images at 1001 steps).
TOOLBOX = {"e4e": "e4e", "lsap": "LSAP"}
SAM_STEPS, PREDICTOR = 300, ["n_images=24", "refine.steps=200"]
REFINERS = {"pti": "e4e + PTI", "dhr": "e4e + DHR", "sam": "e4e + SAM"}


# The methods that predict generator features (records/feature_space), against the same seeds' e4e and HFGI (the
# residual method before them), all evaluated with today's metrics (the attribute-conditioned editing FID among them).
# Feature-Style trains from scratch as pSp and e4e do (Adam at 5e-4, train.py); StyleRes and SFE on each seed's e4e.
FEATURE_SPACE = {"e4e": "e4e", "hfgi": "HFGI", "feature_style": "Feature-Style", "styleres": "StyleRes",
                 "sfe": "SFE"}


def feature_space(runs: Path, folder: Path, seed: int) -> None:
    for name, label in FEATURE_SPACE.items():
        run([f"checkpoint={runs / name / f'seed{seed}' / 'checkpoints' / 'last.ckpt'}", f"name='{label}'",
             *DATA["renders"]], folder / f"{name}_seed{seed}.json")


def toolbox(runs: Path, folder: Path, seed: int) -> None:
    for name, label in TOOLBOX.items():
        run([f"checkpoint={runs / name / f'seed{seed}' / 'checkpoints' / 'last.ckpt'}", f"name='{label}'",
             *DATA["renders"]], folder / f"{name}_seed{seed}.json")
    e4e = runs / "e4e" / f"seed{seed}" / "checkpoints" / "last.ckpt"
    predictor = runs / "sam" / f"seed{seed}.pt"
    if not predictor.exists():
        subprocess.run([str(Path(sys.executable).with_name("ganinv-train-invertibility")), f"checkpoint={e4e}",
                        f"output={predictor}", *PREDICTOR, f"seed={seed}"], check=True)
    for name, label in REFINERS.items():
        options = [f"refine.predictor={predictor}", f"refine.steps={SAM_STEPS}"] if name == "sam" else []
        run([f"checkpoint={e4e}", f"refine={name}", f"name='{label}'", *options, *DATA["renders"]],
            folder / f"e4e_{name}_seed{seed}.json", slow=True)


def run(args: list[str], out: Path, slow: bool = False, data_seed: int = DATA_SEED) -> None:
    if out.exists():
        return
    start = time.time()
    subprocess.run([str(Path(sys.executable).with_name("ganinv-eval")), f"seed={data_seed}", *args,
                    *(SLOW if slow else FAST), f"output={out}"], check=True)
    print(f"== {out.relative_to(out.parents[2])}: {time.time() - start:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--no-long", action="store_true", help=f"skip the {LONG_STEPS}-step optimisation check")
    ap.add_argument("--toolbox", action="store_true", help="only GAN Inverter's methods (records/toolbox)")
    ap.add_argument("--feature-space", action="store_true", help="only the feature-space methods "
                    "(records/feature_space)")
    args = ap.parse_args()
    for seed in args.seeds:
        feature_space(args.runs, args.out / "records" / "feature_space", seed)
    if args.feature_space:
        return
    for seed in args.seeds:
        toolbox(args.runs, args.out / "records" / "toolbox", seed)
    if args.toolbox:
        return
    for data, data_args in DATA.items():  # the encoders first: quick
        for seed in args.seeds:
            for name, label in LABELS.items():
                ckpt = args.runs / name / f"seed{seed}" / "checkpoints" / "last.ckpt"
                run([f"checkpoint={ckpt}", f"name='{label}'", *data_args],
                    args.out / "records" / data / f"{name}_seed{seed}.json")
    for data, data_args in DATA.items():
        folder = args.out / "records" / data
        for k, seed in enumerate(args.seeds):
            for name, label in OPTIMISERS.items():
                run([f"refine={name}", f"name='{label}'", f"refine.steps={STEPS}", *OPTIM, *data_args],
                    folder / f"{name}_set{k}.json", slow=True, data_seed=DATA_SEED + k)
            ckpt = args.runs / "idinvert" / f"seed{seed}" / "checkpoints" / "last.ckpt"
            for name, (label, options) in REFINE.items():
                run([f"checkpoint={ckpt}", "refine=idinvert", f"name='{label}'", *options, *data_args],
                    folder / f"{name}_seed{seed}.json", slow=True)
            for name, (label, method) in PTI.items() if data == "renders" else ():  # W pivot: as the optimisers
                source = ([f"checkpoint={args.runs / method / f'seed{seed}' / 'checkpoints' / 'last.ckpt'}"]
                          if method else PTI_W)
                run([*source, "refine=pti", f"name='{label}'", *data_args], folder / f"{name}_seed{seed}.json",
                    slow=True, data_seed=DATA_SEED if method else DATA_SEED + k)
    if not args.no_long:
        long, steps = args.out / "records" / "long", f"{LONG_STEPS} steps"
        for name, label in OPTIMISERS.items():
            run([f"refine={name}", f"name='{label[:-1]}, {steps})'", f"refine.steps={LONG_STEPS}", *OPTIM,
                 *DATA["renders"]], long / f"{name}.json", slow=True)
        ckpt = args.runs / "idinvert" / f"seed{args.seeds[0]}" / "checkpoints" / "last.ckpt"
        for name, (label, options) in REFINE.items():
            run([f"checkpoint={ckpt}", "refine=idinvert", f"name='{label} ({steps})'", *options,
                 f"refine.steps={LONG_STEPS}", *DATA["renders"]], long / f"{name}.json", slow=True)


if __name__ == "__main__":
    main()
