"""The leaderboard over time: snapshots of a board with their provenance, the changes against a baseline (told
apart from seed noise), a regression gate, and each row's metrics over a folder of snapshots.

A snapshot is a folder holding `snapshot.json` — {"ganinv_snapshot": 1, "created", "ganinv_version", "git_commit"
(of the ganinv checkout, where it is one), "input", "axes", "rows": [each row's name, method, experiment key,
runs, seeds, mean, std, pareto, sweep front, checkpoints, run folders and provenance: config hashes, weights
hashes, generator hashes, data fingerprint and image counts, evaluation protocol], "records": [the records the
board came from]} — beside the board's Markdown and CSV. Readers keep unknown fields and fill missing ones, so a
snapshot written by one version is read by the next."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ganinv.checkpoints import CheckpointError, atomic_write
from ganinv.errors import OptionError

from .names import unknown_metric

VERSION = 1
FILE = "snapshot.json"


class Regressions(Exception):
    """Rows that got worse than `fail_on=` allows against the baseline (the message lists them)."""


def fingerprint(data: dict) -> str:
    """The data a record was measured on, without its image count: source, split, seed, folders."""
    kept = {k: v for k, v in (data or {}).items() if k != "n_images"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def provenance(records: list[dict]) -> dict:
    def each(get) -> list:
        return sorted({str(v) for r in records if (v := get(r)) is not None})

    protocols = {json.dumps(r.get("protocol"), sort_keys=True, default=str) for r in records if r.get("protocol")}
    return {"config_hashes": each(lambda r: r.get("config_hash")), "weights": each(lambda r: r.get("weights")),
            "generators": each(lambda r: (r.get("generator") or {}).get("hash")),
            "data": each(lambda r: fingerprint(r.get("data"))),
            "images": sorted({int((r.get("data") or {}).get("n_images", 0)) for r in records} - {0}),
            "protocol": json.loads(next(iter(protocols))) if len(protocols) == 1 else None}


def row(entry, records: list[dict]) -> dict:
    return {"name": entry.name, "method": entry.method, "group": entry.group, "runs": entry.n, "seeds": entry.seeds,
            "mean": entry.mean, "std": entry.std, "pareto": entry.pareto, "sweep_front": entry.sweep_front,
            "checkpoints": entry.checkpoints, "run_dirs": entry.runs, "provenance": provenance(records)}


def git_commit() -> str | None:
    """The commit of the ganinv checkout this code runs from (None for an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def snapshot(entries: list, source: str, distortion: str, editability: str) -> dict:
    """The board `entries` (ranked) as a snapshot, with the records behind its rows."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("ganinv")
    except PackageNotFoundError:
        ours = None
    return {"ganinv_snapshot": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "ganinv_version": ours, "git_commit": git_commit(), "input": source,
            "axes": {"distortion": distortion, "editability": editability},
            "rows": [row(e, e.records) for e in entries], "records": [r for e in entries for r in e.records]}


def save(snap: dict, folder: Path) -> Path:
    """Writes `snap` into a new folder under `folder`, named after its time; returns that folder."""
    out = folder / snap["created"].replace(":", "-")
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(snap, indent=1, default=str)
    atomic_write(out / FILE, lambda f: f.write(text.encode()))
    return out


def read(path: Path) -> dict:
    """A snapshot file, with the fields an older version did not write filled in."""
    try:
        snap = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(path, f"is not a readable snapshot ({type(e).__name__}).") from None
    if not isinstance(snap, dict) or "ganinv_snapshot" not in snap:
        raise CheckpointError(path, "is not a leaderboard snapshot (no 'ganinv_snapshot' field).")
    snap.setdefault("created", "")
    for r in snap.setdefault("rows", []):
        r.setdefault("std", {})
        r.setdefault("seeds", 1)
        r.setdefault("group", "")
        r.setdefault("provenance", {})
    return snap


def snapshots_in(folder: Path) -> list[dict]:
    """Every snapshot under `folder`, oldest first."""
    return sorted((read(p) for p in folder.rglob(FILE)), key=lambda s: s["created"])


def baseline_rows(path: Path, rows_of_records) -> tuple[list[dict], str]:
    """The baseline's rows and what it is: a snapshot (its folder or file), the latest snapshot under a folder, or
    a folder of records (`rows_of_records(folder)` ranks them as the board does)."""
    if not path.exists():
        raise OptionError(f"baseline={path}: no such snapshot or folder.")
    if path.is_file():
        return read(path)["rows"], f"snapshot {path}"
    if (path / FILE).is_file():
        return read(path / FILE)["rows"], f"snapshot {path}"
    if found := snapshots_in(path):
        return found[-1]["rows"], f"the latest snapshot under {path} ({found[-1]['created']})"
    return rows_of_records(path), f"the records under {path}"


@dataclass
class Change:
    name: str
    status: str  # same | changed | new | dropped | re-configured | not comparable
    deltas: dict  # metric -> (base, now, delta, spread, claim: "changed" | "within spread" | "no claim (one run)")
    why: str = ""


def compare(rows: list[dict], base: list[dict]) -> list[Change]:
    """Each row against the baseline row of the same name: per metric the change, the seeds' spread of both rows
    (std + std) and whether the change is beyond it (a claim needs several seeds on both sides); new, dropped and
    re-configured rows (another experiment key); rows of another generator are not compared, and a protocol that
    differs is named."""
    old = {r["name"]: r for r in base}
    out = []
    for r in rows:
        b = old.pop(r["name"], None)
        if b is None:
            out.append(Change(r["name"], "new", {}))
            continue
        gens, base_gens = (x.get("provenance", {}).get("generators") for x in (r, b))
        if gens and base_gens and gens != base_gens:
            out.append(Change(r["name"], "not comparable", {}, f"another generator ({', '.join(g[:8] for g in gens)}"
                                                               f" vs {', '.join(g[:8] for g in base_gens)})"))
            continue
        why = protocol_difference(r.get("provenance", {}).get("protocol"), b.get("provenance", {}).get("protocol"))
        status = "re-configured" if b.get("group") and r.get("group") != b["group"] else "same"
        deltas = {}
        for k in sorted(set(r["mean"]) & set(b["mean"])):
            now, then = r["mean"][k], b["mean"][k]
            spread = r["std"].get(k, 0.0) + b["std"].get(k, 0.0)
            claim = "no claim (one run)" if min(r["seeds"], b["seeds"]) < 2 else \
                "changed" if abs(now - then) > spread else "within spread"
            deltas[k] = (then, now, now - then, spread, claim)
        if status == "same" and any(d[4] == "changed" for d in deltas.values()):
            status = "changed"
        out.append(Change(r["name"], status, deltas, why))
    out += [Change(name, "dropped", {}) for name in old]
    return out


def protocol_difference(now: dict | None, then: dict | None) -> str:
    if not now or not then or now == then:
        return ""
    keys = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
    return "protocol differs: " + "; ".join(f"{k}: {then.get(k)!r} then, {now.get(k)!r} now" for k in keys)


def parse_gate(text) -> list[tuple[str, int, float, bool]]:
    """`fail_on='mse:+2%,lec:+5%,psnr:-0.5'`: (metric, +1 when a rise is a regression / -1 a fall, amount,
    relative)."""
    if not text:
        return []
    out = []
    parts = str(text).split(",") if isinstance(text, str) else [str(t) for t in text]  # a string, or a list
    for part in parts:
        found = re.fullmatch(r"\s*([\w.]+)\s*:\s*([+-])\s*([0-9.]+(?:e-?[0-9]+)?)\s*(%?)\s*", part)
        if not found:
            raise OptionError(f"fail_on={text}: {part!r} is not <metric>:+<amount>[%] (a rise that fails) or "
                              "<metric>:-<amount>[%] (a fall that fails), e.g. fail_on='mse:+2%,psnr:-0.5'.")
        metric, sign, amount, pct = found.groups()
        if why := unknown_metric(metric):
            raise OptionError(f"fail_on={text}: {metric}: {why}")
        out.append((metric, 1 if sign == "+" else -1, float(amount) / (100 if pct else 1), bool(pct)))
    return out


def regressions(changes: list[Change], gate: list[tuple[str, int, float, bool]]) -> list[str]:
    """The rows whose change on a gated metric is beyond the seeds' spread and past the allowed amount."""
    out = []
    for c in changes:
        for metric, sign, amount, relative in gate:
            if metric not in c.deltas or c.status in ("re-configured", "not comparable") or c.why:
                continue
            then, now, delta, spread, claim = c.deltas[metric]
            size = sign * delta / (abs(then) if relative and then else 1)
            if claim == "changed" and size > amount:
                shown = f"{delta / abs(then):+.2%}" if relative and then else f"{delta:+.4g}"
                out.append(f"{c.name}: {metric} {shown} ({then:.5g} -> {now:.5g}; the seeds' spread ±{spread:.2g}) "
                           f"past fail_on {metric}:{'+' if sign > 0 else '-'}"
                           f"{amount * 100 if relative else amount:g}{'%' if relative else ''}")
    return out


def change_lines(changes: list[Change], metrics: list[str], against: str) -> list[str]:
    """The comparison as lines under the table."""
    lines = [f"against {against}:"]
    for c in changes:
        if c.status in ("new", "dropped"):
            lines.append(f"  {c.name}: {c.status}")
            continue
        parts = []
        for k in metrics:
            if k in c.deltas:
                then, now, delta, spread, claim = c.deltas[k]
                rel = f" ({delta / abs(then):+.1%})" if then else ""
                parts.append(f"{k} {delta:+.3g}{rel} {claim}")
        extra = f"; {c.why}" if c.why else ""
        lines.append(f"  {c.name}: {c.status}" + (f": {', '.join(parts)}" if parts else "") + extra)
    return lines


def plot_history(snaps: list[dict], metrics: list[str], path: Path) -> Path:
    """Each row's metrics over the snapshots (one panel per metric, points at each snapshot's time)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), dpi=110, squeeze=False)
    names = sorted({r["name"] for s in snaps for r in s["rows"]})
    for ax, metric in zip(axes[0], metrics):
        for i, name in enumerate(names):
            points = [(k, r["mean"][metric], r["std"].get(metric, 0.0)) for k, s in enumerate(snaps)
                      for r in s["rows"] if r["name"] == name and metric in r["mean"]]
            if points:
                xs, ys, es = zip(*points)
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=f"C{i % 10}", label=name)
        ax.set_xticks(range(len(snaps)), [s["created"][:16].replace("T", "\n") for s in snaps], fontsize=7)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
