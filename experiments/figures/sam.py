"""The table and picture of docs/inversion.md#sam: SAM after an e4e run on held-out toy renders (data seed 7) at three
thresholds — which space each pixel goes to, distortion, and what a smile edit still does.

    ganinv-train-invertibility checkpoint=<e4e run>/checkpoints/last.ckpt output=sam.pt n_images=32 \
        refine.steps=200 lr=0.001
    python experiments/figures/sam.py <e4e run>/checkpoints/last.ckpt sam.pt [docs/img] [--steps 300]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from ganinv.editing import edit
from ganinv.losses import MeanDistance
from ganinv.methods import load_method
from ganinv.metrics.suite import toy_directions
from ganinv.refine import SpatiallyAdaptiveMultilayer
from ganinv.refine.sam import select
from ganinv.toy import LABELS, AttributePredictor, ToyFaceParser, load_perceptual_net, render

THRESHOLDS = (0.225, 0.05, 0.0)
COLOURS = torch.tensor([[0.2, 0.4, 1.0], [1.0, 0.6, 0.1], [0.9, 0.1, 0.2]])  # W+, F4, F6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("predictor")
    p.add_argument("out", nargs="?", default="docs/img")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--images", type=int, default=6)
    a = p.parse_args()
    torch.manual_seed(0)
    m = load_method(a.checkpoint).eval()
    net = MeanDistance(load_perceptual_net())
    x = render(a.images, 64, seed=7).images
    base = m.invert(x)
    d, smile = toy_directions(m.generator), AttributePredictor("smile")
    background = ToyFaceParser()(x) == LABELS.index("background")

    def measure(inv) -> tuple[dict, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            rec = m.reconstruct(inv)
            edited = m.reconstruct(edit(inv, d["smile"], 3.0, d.layers))
        return {"mse": float(F.mse_loss(rec, x)), "perceptual": float(net.per_image(rec, x).mean()),
                "smile gain": float((smile(edited) - smile(rec)).mean()),
                "background change": float((edited - rec).abs().mean(1)[background].mean())}, rec, edited

    rows = [("e4e", "—", *measure(base))]
    columns = [x, rows[0][3]]
    for tau in THRESHOLDS:
        sam = SpatiallyAdaptiveMultilayer(m, net, predictor=a.predictor, threshold=tau, steps=a.steps,
                                          layers=["W+", "F4", "F6"])
        with torch.no_grad():
            errors = sam.predictor(x)
            choice = select([errors[s] for s in sam.spaces], sam.segments(x), tau)
        share = " / ".join(f"{100 * float((choice == i).float().mean()):.0f}" for i in range(len(sam.spaces)))
        rows.append((f"SAM, τ {tau:g}", share + " %", *measure(sam(base, x))))
        columns += [COLOURS[choice].permute(0, 3, 1, 2) * 2 - 1, rows[-1][3], rows[-1][4]]
    print("| | W+ / F4 / F6 pixels | MSE | perceptual | smile gain (α = 3) | background change |")
    print("|---|---|---|---|---|---|")
    for name, share, m_, *_ in rows:
        print(f"| {name} | {share} | {m_['mse']:.4f} | {m_['perceptual']:.3g} | {m_['smile gain']:.2f} | "
              f"{m_['background change']:.3f} |")
    grid = torch.stack(columns, 1).flatten(0, 1)
    out = Path(a.out) / "sam_toy.png"
    save_image(F.interpolate(grid, scale_factor=2, mode="nearest") * 0.5 + 0.5, out, nrow=len(columns), padding=2)
    print(f"wrote {out}: per image, the render, e4e, then per threshold the chosen spaces (blue W+, orange F4, red "
          "F6), SAM's reconstruction and its smile edit")


if __name__ == "__main__":
    main()
