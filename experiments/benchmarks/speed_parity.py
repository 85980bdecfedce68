"""Loss-curve parity of a speed option against float32: the same toy recipe, seed and data trained for 100
iterations with and without `speed.*` (`python experiments/benchmarks/speed_parity.py [--methods ...]`); prints,
per method, the largest gap between the two runs' training-loss curves (each a 10-iteration running mean, relative
to the float32 curve) and both runs' final validation MSE, and adds them to `speed_parity.json` beside this file."""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from ganinv.configs import CONF
from ganinv.workflows.training import train

OPTION = ["speed.autocast=bf16", "speed.channels_last=true"]


def curve(run: Path, steps: int) -> tuple[list[float], float, float]:
    """(training loss per iteration, last val/mse, seconds) of a finished run with the CSV logger."""
    rows = list(csv.DictReader(next(run.rglob("metrics.csv")).open()))
    loss = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    val = [float(r["val/mse"]) for r in rows if r.get("val/mse")]
    assert len(loss) == steps, (len(loss), steps)
    return loss, val[-1], float((run / "seconds").read_text())


def run(method: str, steps: int, folder: Path, extra: list[str]) -> tuple[list[float], float, float]:
    with initialize_config_dir(CONF, version_base=None):
        cfg = compose("train", overrides=[f"experiment=toy_{method}", f"trainer.max_steps={steps}",
                                          f"run_dir={folder}", "logger=csv", "trainer.log_every_n_steps=1",
                                          f"trainer.val_check_interval={steps}", "callbacks.metrics.every=0",
                                          "callbacks.images.every=0", "+trainer.enable_progress_bar=false", *extra])
    start = time.perf_counter()
    train(cfg)
    (folder / "seconds").write_text(str(time.perf_counter() - start))
    return curve(folder, steps)


def smooth(x: list[float], k: int = 10) -> list[float]:
    return [sum(x[max(0, i - k + 1): i + 1]) / len(x[max(0, i - k + 1): i + 1]) for i in range(len(x))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["psp", "psp_w", "e4e", "restyle_psp", "idinvert"])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    path = Path(__file__).parent / "speed_parity.json"
    out = json.loads(path.read_text()) if path.is_file() else {}  # other methods' results are kept
    print("| method | max gap of the loss curves (relative) | final val/mse fp32 | with the option | seconds fp32 | "
          "with the option |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            base, base_mse, base_s = run(method, args.steps, Path(tmp) / f"{method}_fp32", [])
            fast, fast_mse, fast_s = run(method, args.steps, Path(tmp) / f"{method}_fast", OPTION)
            a, b = smooth(base), smooth(fast)
            gap = max(abs(x - y) / abs(x) for x, y in zip(a, b))
            out[method] = {"option": OPTION, "steps": args.steps, "max_relative_gap": gap, "val_mse_fp32": base_mse,
                           "val_mse_option": fast_mse, "seconds_fp32": base_s, "seconds_option": fast_s,
                           "loss_fp32": base, "loss_option": fast}
            print(f"| {method} | {gap:.3f} | {base_mse:.4f} | {fast_mse:.4f} | {base_s:.0f} | {fast_s:.0f} |",
                  flush=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
