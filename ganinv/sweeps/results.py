"""What an Optuna sweep leaves in its folder when its study is complete, `optimization_results.yaml`:

- `objectives`, `directions`, `n_trials`, `states` (how many trials ended complete, pruned, failed);
- `front`: the trials no other complete trial beats on every objective (the Pareto front; with one objective,
  the best trial), each with its number, parameters, values, run folder and checkpoint (the one whose
  evaluation gave the values: `best.ckpt` for one objective, `last.ckpt` for several);
- `trials`: every trial launched, best first for one objective (else by number), with its state;
- with one objective, also `best_params`, `best_value` and `best_run`."""

from __future__ import annotations

import json
from pathlib import Path

from ganinv.checkpoints.safe_io import atomic_write
from ganinv.sweeps.study import RUN, SKIPPED

RESULTS = "optimization_results.yaml"


def row(trial, goals: list[str], sweep_dir: Path) -> dict:
    run = trial.user_attrs.get(RUN)
    record = sweep_dir / run / "record.json" if run else None
    checkpoint = json.loads(record.read_text()).get("checkpoint") if record and record.is_file() else None
    values = dict(zip(goals, trial.values)) if trial.values else {}
    return {"number": trial.number, "state": trial.state.name.lower(), "params": dict(trial.params),
            "values": values, "run": run, "checkpoint": checkpoint}


def front_numbers(study) -> list[int]:
    """The trial numbers of the Pareto front (Optuna's), the best trial for one objective."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    return sorted(t.number for t in study.best_trials)


def write_results(study, sweep_dir: Path, goals: list[str], n_trials: int) -> dict:
    import yaml

    trials = [t for t in study.get_trials(deepcopy=False) if SKIPPED not in t.user_attrs]
    rows = [row(t, goals, sweep_dir) for t in trials]
    directions = [d.name.lower() for d in study.directions]
    if len(goals) == 1:  # best first; unfinished trials last
        sign = -1 if directions[0] == "maximize" else 1
        rows.sort(key=lambda r: (not r["values"], sign * r["values"].get(goals[0], 0.0), r["number"]))
    on_front = set(front_numbers(study))
    states: dict[str, int] = {}
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
    out = {"name": study.study_name, "objectives": goals, "directions": directions, "n_trials": n_trials,
           "states": states, "front": [r for r in rows if r["number"] in on_front], "trials": rows}
    if len(goals) == 1 and out["front"]:
        best = out["front"][0]
        out = {**out, "best_params": best["params"], "best_value": best["values"][goals[0]], "best_run": best["run"]}
    text = yaml.safe_dump(out, sort_keys=False)
    atomic_write(sweep_dir / RESULTS, lambda f: f.write(text.encode()))
    return out
