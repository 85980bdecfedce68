"""Evaluation records: one JSON file per evaluation (what `ganinv-eval` and the metrics callback write), read back
from folders or, online, from the summaries of a W&B project's runs. A run is one record: its `record.json`.

A record: {"ganinv_record": 1, "name", "method", "group" (`experiment_key`), "checkpoint", "iteration", "weights"
(the hash of the evaluated weights), "seed" (the training run's), "run", "generator": {"hash", "config"}, "data",
"metrics": {name: value}, "protocol": {name: text}, "metric_card" (the preset and every choice its metrics make:
`EvaluationSuite.card`), "timing", "config", "config_hash", "created"}.

Records are ranked side by side only when their metric cards agree (`same_card`): a metric name means one protocol
on one board.

What a record measured (`measurement`: its weights, refiner, protocol and image set) identifies it: the same
measurement recorded twice (a re-evaluation) counts once, the newest (`distinct`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ganinv.checkpoints import CheckpointError, atomic_write
from ganinv.warn import warn

REQUIRED = ("name", "method", "metrics")
VERSION = 1


def make_record(name: str, method: str, metrics: dict, **fields) -> dict:
    """A complete record; `config` (a plain dict) also gives `config_hash`."""
    config = fields.get("config") or {}
    text = json.dumps(config, sort_keys=True, default=str)
    return {"ganinv_record": VERSION, "name": name, "method": method,
            "metrics": {k: float(v) for k, v in metrics.items()}, **fields,
            "config_hash": hashlib.sha256(text.encode()).hexdigest()[:16],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def experiment_key(*parts) -> str:
    """What makes runs repeats of one experiment: a hash of `parts` (configs, hyperparameters) with every key named
    `seed` left out; records with the same name and key are one leaderboard row (mean ± std over seeds)."""

    def unseeded(x):
        if isinstance(x, dict):
            return {str(k): unseeded(v) for k, v in x.items() if k != "seed"}
        return [unseeded(v) for v in x] if isinstance(x, (list, tuple)) else x

    text = json.dumps(unseeded(list(parts)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def measurement(record: dict) -> str:
    """What a record measured: a hash of its weights, refiner, protocol and image set (data source, split, number
    and seed); a record that does not name its weights (an older one) is a measurement of its own."""
    if not record.get("weights"):
        return f"source:{record.get('source')}:{id(record)}"
    data = record.get("data") or {}
    what = [record["weights"], record.get("refine"), record.get("protocol"), record.get("metric_card"),
            {k: data.get(k) for k in ("source", "split", "n_images", "seed")}]
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def distinct(records: list[dict]) -> tuple[list[dict], dict[int, list[dict]]]:
    """The records with each measurement once (the newest by `created`), and by `id` of each kept record the
    older records of the same measurement it replaces."""
    keys = {id(r): measurement(r) for r in records}
    newest: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: str(r.get("created") or "")):
        newest[keys[id(r)]] = r
    kept = [r for r in records if newest[keys[id(r)]] is r]
    replaced: dict[int, list[dict]] = {}
    for r in records:
        if newest[keys[id(r)]] is not r:
            replaced.setdefault(id(newest[keys[id(r)]]), []).append(r)
    return kept, replaced


def checkpoint_run(checkpoint: str | os.PathLike) -> dict:
    """The training run a checkpoint belongs to (`<run>/checkpoints/<file>.ckpt` beside `<run>/config.yaml`): its
    folder and seed; {} for a file of no ganinv run."""
    import yaml

    run = Path(checkpoint).absolute().parent.parent
    try:
        config = yaml.safe_load((run / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    seed = config.get("seed") if isinstance(config, dict) else None
    return {"run": str(run), "seed": int(seed)} if isinstance(seed, int) else {}


def write_record(record: dict, path: str | os.PathLike) -> Path:
    text = json.dumps(record, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(Path(path), lambda f: f.write(text.encode()))


def check_record(record: object, source: str) -> dict | None:
    """The record if it has every required field with numeric metrics, else None after a warning naming `source`."""
    if not isinstance(record, dict) or record.get("ganinv_record") is None:
        warn(f"{source}: not a ganinv record (no 'ganinv_record' field); skipped")
        return None
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        warn(f"{source}: record without {', '.join(missing)}; skipped")
        return None
    bad = [k for k, v in record["metrics"].items() if not isinstance(v, (int, float))] \
        if isinstance(record["metrics"], dict) else ["metrics"]
    if bad:
        warn(f"{source}: non-numeric metric {bad[0]!r}; skipped")
        return None
    return {**record, "source": source}


def read_records(folder: str | os.PathLike) -> list[dict]:
    """Every record under `folder` (`*.json` files that are records; W&B's own files are not read: the same record
    is the run's `record.json`); malformed or partial ones are skipped with a warning naming the file."""
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(root, "is not a folder of records.", "Pass the folder ganinv-eval wrote to.")
    out = []
    for path in sorted(root.rglob("*.json")):
        if "wandb" in path.parts:
            continue  # W&B's own files
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            warn(f"{path}: unreadable record ({type(err).__name__}: {err}); skipped")
            continue
        if isinstance(data, dict) and "ganinv_record" in data:
            rec = check_record(data, str(path))
            if rec:
                out.append(rec)
    return out


def read_runs(folder: str | os.PathLike) -> tuple[list[dict], list[tuple[str, str]]]:
    """The records under `folder` that count on one leaderboard, and the runs left out with why: run folders
    (a `config.yaml` beside `checkpoints/`) without a record, training runs that did not finish, and records of
    another generator or data source than most of the others."""
    from collections import Counter

    root = Path(folder)
    records = read_records(root)
    skipped = [(str(run), "no record: no evaluation ran (callbacks.metrics.every=0) or none yet")
               for run in sorted({p.parent for p in root.rglob("config.yaml")})
               if (run / "checkpoints").is_dir() and not (run / "record.json").is_file()]
    kept = []
    for r in records:
        if r.get("pruned"):
            skipped.append((r["source"], f"pruned at iteration {r['pruned'].get('iteration')} of "
                                         f"{r.get('max_iterations')} (the sweep's pruner found it behind)"))
        elif r.get("finished") is False:
            skipped.append((r["source"], f"unfinished: evaluated up to iteration {r.get('last', {}).get('iteration')}"
                                         f" of {r.get('max_iterations')}"))
        else:
            kept.append(r)

    def domain(r: dict) -> tuple:
        return (r.get("generator") or {}).get("hash"), (r.get("data") or {}).get("source")

    common = Counter(domain(r) for r in kept).most_common(1)
    out = []
    for r in kept:
        (g, d), (g0, d0) = domain(r), common[0][0]
        if g != g0:
            skipped.append((r["source"], f"another generator ({str(g)[:8]}) than the other runs' ({str(g0)[:8]})"))
        elif d != d0:
            skipped.append((r["source"], f"another data source ({d}) than the other runs' ({d0})"))
        else:
            out.append(r)
    return out, skipped


UNRECORDED = {"preset": "none recorded (a record older than metric cards)"}


def same_card(records: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """The records whose metric card is the most common one, and the others left out with the entries of their
    card that differ (a record without a card has a card of its own)."""
    from collections import Counter

    def key(r: dict) -> str:
        return json.dumps(r.get("metric_card") or UNRECORDED, sort_keys=True)

    if not records:
        return [], []
    common = Counter(key(r) for r in records).most_common(1)[0][0]
    card = json.loads(common)
    kept, skipped = [], []
    for r in records:
        if key(r) == common:
            kept.append(r)
            continue
        other = r.get("metric_card") or UNRECORDED
        diff = [k for k in sorted(set(card) | set(other)) if card.get(k) != other.get(k)]
        named = "; ".join(f"{k}: {other.get(k, 'absent')!r} here, {card.get(k, 'absent')!r} there" for k in diff[:3])
        skipped.append((r.get("source", r.get("name")), f"another metric card (metrics={other.get('preset')}) than "
                        f"the other records' (metrics={card.get('preset')}), not ranked with them: {named}"
                        + (f" and {len(diff) - 3} more" if len(diff) > 3 else "")))
    return kept, skipped


def wandb_project_records(project: str) -> list[dict]:
    """Records in the summaries of a W&B project's runs (`entity/project`), through the public API (online)."""
    import wandb

    out = []
    for run in wandb.Api().runs(project):
        record = run.summary.get("ganinv_record")
        if record is not None:
            rec = check_record(dict(record), f"wandb:{project}/{run.id}")
            if rec:
                out.append(rec)
    return out
