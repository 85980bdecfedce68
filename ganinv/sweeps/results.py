"""`SweepResults`: a Hydra callback that, when a multirun ends, names each trial's run folder in the sweeper's
`optimization_results.yaml` (Optuna's): every trial's folder, overrides and objective, and the best trial's folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback


def trials(sweep_dir: Path) -> list[dict]:
    """Each job folder of a sweep that holds a record: its folder (relative to the sweep), the job's overrides
    (`.hydra/overrides.yaml`), the objective and its best value, best first."""
    import yaml

    from ganinv.metrics.names import higher_is_better

    out = []
    for path in sorted(sweep_dir.glob("*/record.json")):
        record = json.loads(path.read_text())
        objective = (record.get("selected") or {}).get("objective")
        overrides = path.parent / ".hydra" / "overrides.yaml"
        out.append({"run": path.parent.name,
                    "overrides": yaml.safe_load(overrides.read_text()) if overrides.is_file() else [],
                    "objective": objective, "value": record["metrics"].get(objective)})
    sign = -1 if out and out[0]["objective"] and higher_is_better(out[0]["objective"]) else 1
    return sorted(out, key=lambda t: sign * t["value"] if isinstance(t["value"], (int, float)) else float("inf"))


class SweepResults(Callback):
    """Adds `trials` (each run folder, overrides and value) and `best_run` to the sweep's
    `optimization_results.yaml`; nothing for a sweep that writes none (a grid)."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        import yaml

        sweep = Path(str(config.hydra.sweep.dir))
        path = sweep / "optimization_results.yaml"
        if not path.is_file():
            return
        results = yaml.safe_load(path.read_text()) or {}
        found = trials(sweep)
        best = {f"{k}={v}" for k, v in (results.get("best_params") or {}).items()}
        results["best_run"] = next((t["run"] for t in found if best <= set(t["overrides"])), None)
        results["trials"] = found
        path.write_text(yaml.safe_dump(results, sort_keys=False))
