"""`make demo` (`python -m ganinv.commands.demo [OUT]`): the whole pipeline on the embedded toy domain, offline.

Trains pSp (W+ and W), e4e, ReStyle-pSp and In-Domain inversion on short schedules, evaluates each (and W / W+
optimisation, and In-Domain's regularised optimiser) on the same held-out renders, prints the leaderboard, and
writes under OUT (default `demo/`): `runs/` (checkpoints, logs, W&B offline runs), `records/`, `leaderboard/`
(Markdown, CSV, trade-off plot, HTML report) and `samples/` (reconstructions and edit grids)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ganinv.configs import CONF

# name -> (experiment, iterations, extra overrides): schedules sized for two CPU cores
TRAINED = {
    "psp": ("toy_psp", 150, []),
    "psp_w": ("toy_psp_w", 150, []),
    "e4e": ("toy_e4e", 150, ["method.progressive_start=25", "method.progressive_step_every=12"]),
    "restyle_psp": ("toy_restyle_psp", 100, []),
    "idinvert": ("toy_idinvert", 120, ["speed.autocast=null", "speed.channels_last=false"]),
}
LABELS = {"psp": "pSp (W+)", "psp_w": "pSp (W)", "e4e": "e4e", "restyle_psp": "ReStyle-pSp",
          "idinvert": "In-Domain encoder"}
EVAL = ["seed=7", "n_images=16", "editability.lec_images=4"]  # held-out renders (data seed 7)
# bfloat16 autocast where the CPU or GPU computes it natively, and NHWC weights: +18-28 % images/s on the toy
# recipes, loss curves within 2 % of float32's; not for the In-Domain encoder, whose adversarial training drifts
# further (docs/scaling.md#training-speed)
SPEED = ["speed.autocast=auto", "speed.channels_last=true"]


def compose(name: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(CONF, version_base=None):
        return hydra_compose(name, overrides=overrides)


def say(text: str, start: float) -> None:
    from rich.console import Console

    Console().rule(f"[bold]{text}[/bold] ({(time.time() - start) / 60:.1f} min in)")


def main(out: Path) -> None:
    from ganinv.workflows.editing import edit_grid
    from ganinv.workflows.evaluation import evaluate, summary
    from ganinv.workflows.leaderboard import leaderboard
    from ganinv.workflows.trainer import quiet_lightning
    from ganinv.workflows.training import train

    quiet_lightning()
    start = time.time()
    for sub in ("records", "samples"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    faces = out / "samples" / "inputs"
    write_inputs(faces)
    evals: dict[str, tuple[str, list[str]]] = {}  # name -> (label, ganinv-eval / ganinv-edit arguments)
    for name, (experiment, steps, extra) in TRAINED.items():
        say(f"training {LABELS[name]}: {steps} iterations", start)
        run = out / "runs" / name
        train(compose("train", [f"experiment={experiment}", f"trainer.max_steps={steps}", f"run_dir={run}",
                                f"trainer.val_check_interval={steps}", "logger=wandb", "logger.mode=offline",
                                "callbacks.metrics.n_images=16", "editability.lec_images=4",
                                "+trainer.enable_model_summary=false", *SPEED, *extra]))
        evals[name] = (LABELS[name], [f"checkpoint={run}/checkpoints/last.ckpt"])
    evals["idinvert_refine"] = ("In-Domain + regularised optimiser", [*evals["idinvert"][1], "refine=idinvert"])
    for space, label in (("optim_w", "Optimisation (W)"), ("optim_wplus", "Optimisation (W+)")):
        evals[space] = (label, [f"refine={space}", "refine.steps=100", "refine.lr=0.05"])
    for name, (label, args) in evals.items():
        say(f"evaluating {label}", start)
        record = out / "records" / f"{name}.json"
        print(summary(evaluate(compose("eval", [*args, f"name='{label}'", *EVAL, f"output={record}"]))))
        grid, _ = edit_grid(compose("edit", [*args, f"input={faces}",
                                             f"output={out / 'samples' / f'{name}_edits.png'}", "max_images=2",
                                             "edits=[smile,age]", "strengths=[-3,-1.5,0,1.5,3]"]))
        data = json.loads(record.read_text())
        record.write_text(json.dumps({**data, "samples": [str(grid)]}, indent=2))
    say("leaderboard", start)
    leaderboard(compose("leaderboard", [f"input={out / 'records'}", f"output={out / 'leaderboard'}",
                                        "title='ganinv demo (toy domain)'"]))
    runs = sorted(str(p) for p in (out / "runs").glob("*/wandb/offline-run-*"))
    print("\nW&B offline runs (upload with `wandb sync <dir>`):\n  " + "\n  ".join(runs))
    print(f"\nreport: {out / 'leaderboard' / 'leaderboard.html'}; plot: {out / 'leaderboard' / 'tradeoff.png'}; "
          f"edit grids: {out / 'samples'}\ndemo finished in {(time.time() - start) / 60:.1f} min")


def write_inputs(folder: Path) -> None:
    """Two held-out toy faces for the edit grids (render seed 4242, never used in training)."""
    from torchvision.utils import save_image

    from ganinv.toy import render

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(render(2, 64, 4242).images):
        save_image(img * 0.5 + 0.5, folder / f"face_{i}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo"))
