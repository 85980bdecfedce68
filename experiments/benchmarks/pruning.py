"""What pruning saves: the same 12-trial Optuna sweep of toy pSp (learning rate on a log scale and the perceptual
weight; 40 iterations, evaluated every 10) without a pruner and with the median pruner, one worker, the same
sampler seed. Writes each sweep's wall time, trials pruned, iterations trained and best value.

    python experiments/benchmarks/pruning.py [--trials 12] [--json experiments/benchmarks/pruning.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

SWEEP = ["experiment=toy_psp", "hydra/sweeper=optuna", "logger=none", "threads=2", "data.batch_size=8",
         "data.toy.n_val=16", "callbacks.metrics.n_images=16", "editability.lec_images=2", "fid=none",
         "callbacks.images.every=0", "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false",
         "trainer.max_steps=40", "trainer.val_check_interval=10", "hydra.sweeper.sampler.seed=0",
         "hydra.sweeper.sampler.n_startup_trials=4", "method.optimizer.lr=tag(log,interval(1e-5,1e-2))",
         "loss.weights.perceptual=interval(0.0,1.0)"]
PRUNERS = {"none": ["hydra/sweeper/pruner=none"],
           "median": ["hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=4"]}


def run(pruner: str, trials: int, folder: Path) -> dict:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ganinv.commands.train", "-m", *SWEEP, *PRUNERS[pruner],
                           f"hydra.sweeper.n_trials={trials}", f"hydra.sweep.dir={folder}"],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    seconds = time.perf_counter() - began
    out = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    iterations = 0
    for t in out["trials"]:
        record = json.loads((folder / t["run"] / "record.json").read_text())
        iterations += (record.get("pruned") or record["last"])["iteration"]
    return {"pruner": pruner, "seconds": round(seconds, 1), "states": out["states"], "iterations": iterations,
            "best_value": out["best_value"], "best_params": out["best_params"]}


def machine() -> str:
    """The CPU model, its cores and whether it has AVX512 (timings differ about 2x between the two kinds)."""
    import os

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    return f"{model}, {os.cpu_count()} cores, {'with' if 'avx512f' in info else 'without'} AVX512"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("pruning.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in PRUNERS:
            rows.append(run(pruner, args.trials, Path(tmp) / pruner))
            print(rows[-1], flush=True)
    result = {"machine": machine(), "trials": args.trials,
              "sweep": SWEEP, "rows": rows,
              "saved": round(1 - rows[1]["seconds"] / rows[0]["seconds"], 3)}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median pruning: {result['saved']:.0%} less wall time; best mse {rows[0]['best_value']:.5f} (none) vs "
          f"{rows[1]['best_value']:.5f} (median)")


if __name__ == "__main__":
    main()
