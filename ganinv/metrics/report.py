"""The leaderboard: records grouped by name and experiment (mean ± std over seeds), ranked on a distortion metric,
with Pareto flags against an editability metric; written as Markdown, CSV, a PNG of the trade-off and a
self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from ganinv.checkpoints import atomic_write

from .names import higher_is_better

SHOWN = ("mse", "psnr", "ssim", "perceptual", "lpips", "lpips_alex", "id_sim", "id_sim_papers", "lec", "p_norm",
         "w_layer_spread", "edit_gain", "edit_others", "edit_id", "fid_rec", "fid_edit", "fid_attr",
         "seconds_per_image")


@dataclass
class Entry:
    """One leaderboard row: the records sharing a name and an experiment key. `n` runs (distinct weights), from
    `seeds` distinct training seeds: a seed's runs (e.g. on 1 and on 2 processes) and evaluations are averaged
    first, and `std` is over seeds (0 for one seed)."""

    name: str
    method: str
    n: int
    mean: dict[str, float]
    std: dict[str, float]
    samples: list[str] = field(default_factory=list)
    pareto: bool = False
    images: set[int] = field(default_factory=set)  # the numbers of images its records were measured on
    checkpoints: list[str] = field(default_factory=list)  # each record's checkpoint (a run's best)
    seeds: int = 1
    evaluations: int = 1  # records (distinct measurements) behind the row
    replaced: int = 0  # re-evaluations of a measurement left out (the newest kept)
    rank: int = 0  # 1 + the rows better on the ranked metric beyond both rows' spread (`rank`)
    runs: list[str] = field(default_factory=list)  # the run folders
    sweep_front: bool = False  # a run of the Pareto front of the Optuna sweep it came from
    group: str = ""  # the experiment key its records share
    records: list[dict] = field(default_factory=list, repr=False)  # the records behind it


def front_head(entries: list[Entry]) -> list[str]:
    """The `sweep front` column, where the board holds an Optuna sweep's runs."""
    return ["sweep front"] if any(e.sweep_front for e in entries) else []


def front_cell(entries: list[Entry], e: Entry) -> list[str]:
    return ["✓" if e.sweep_front else ""] if front_head(entries) else []


def run_name(record: dict, shared: set[str]) -> str:
    """A record's name, with the multirun overrides that set its run apart from the others (`shared`: those every
    run has; `seed` is never among them)."""
    own = [o for o in str(record.get("overrides") or "").split() if o not in shared]
    return f"{record['name']} ({' '.join(own)})" if own else record["name"]


def aggregate(records: list[dict]) -> list[Entry]:
    """Entries by record name and experiment key (`group`: the run's settings but its seed). The same measurement
    recorded twice counts once (`records.distinct`); metrics (and `seconds_per_image`) are averaged per training
    seed, then over seeds, with the sample std over seeds (0 for one). A record without a seed is a seed of its own.
    A training run's record is its best evaluation; its name carries its sweep's overrides; two experiments under
    one name are told apart by their key's start."""
    from .records import distinct

    records, replaced = distinct(records)
    overrides = [set(str(r.get("overrides") or "").split()) for r in records]
    shared = set.intersection(*overrides) if overrides else set()
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((run_name(r, shared), str(r.get("group") or "")), []).append(r)
    names = [name for name, _ in groups]
    out = []
    for (name, group), recs in groups.items():
        by_seed: dict[object, list[dict]] = {}
        for r in recs:
            by_seed.setdefault(r["seed"] if isinstance(r.get("seed"), int) else id(r), []).append(r)
        values: dict[str, list[float]] = {}
        for seed_recs in by_seed.values():
            for k, v in seed_mean(seed_recs).items():
                values.setdefault(k, []).append(v)
        mean = {k: sum(v) / len(v) for k, v in values.items()}
        std = {k: (sum((x - mean[k]) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
               for k, v in values.items()}
        samples = [s for r in recs for s in r.get("samples", [])]
        label = f"{name} [{group[:6] or 'no key'}]" if names.count(name) > 1 else name
        images = {int((r.get("data") or {}).get("n_images", 0)) for r in recs} - {0}
        checkpoints = [r["checkpoint"] + (f" (iteration {r['iteration']})" if r.get("iteration") is not None else "")
                       for r in recs if r.get("checkpoint")]
        n_runs = len({r.get("weights") or id(r) for r in recs})
        out.append(Entry(label, recs[0]["method"], n_runs, mean, std, samples, images=images,
                         checkpoints=list(dict.fromkeys(checkpoints)), seeds=len(by_seed), evaluations=len(recs),
                         replaced=sum(len(replaced.get(id(r), [])) for r in recs),
                         runs=list(dict.fromkeys(str(r["run"]) for r in recs if r.get("run"))), group=group,
                         records=recs))
    return out


def seed_mean(records: list[dict]) -> dict[str, float]:
    """The mean of each finite metric (and timing) over one seed's records."""
    values: dict[str, list[float]] = {}
    for r in records:
        row = {**r["metrics"], **{k: v for k, v in (r.get("timing") or {}).items() if k != "images"}}
        for k, v in row.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                values.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in values.items()}


def image_counts_note(entries: list[Entry]) -> str | None:
    """A warning line when the rows were measured on different numbers of images, else None."""
    counts = sorted({n for e in entries for n in e.images})
    if len(counts) < 2:
        return None
    by = {n: [e.name for e in entries if n in e.images] for n in counts}
    return "note: these records were measured on different numbers of images: " + "; ".join(
        f"{n} ({', '.join(names)})" for n, names in by.items())


def rank(entries: list[Entry], distortion: str, editability: str) -> list[Entry]:
    """Sorted best-first on `distortion`; `pareto` set on entries no other entry beats on both axes."""
    import difflib

    known = sorted({k for e in entries for k in e.mean})
    for option, metric in (("distortion", distortion), ("editability", editability)):
        missing = [e.name for e in entries if metric not in e.mean]
        if missing:
            close = difflib.get_close_matches(metric, known, n=1)
            hint = f"did you mean {option}={close[0]}? " if close else ""
            raise KeyError(f"{option}={metric}: " + ("no record has this metric" if len(missing) == len(entries)
                                                     else f"the records of {', '.join(missing)} lack it")
                           + f"; {hint}they have: {', '.join(known)}")

    def score(e: Entry, metric: str) -> float:  # lower is better
        return -e.mean[metric] if higher_is_better(metric) else e.mean[metric]

    def beats(o: Entry, e: Entry, metric: str) -> bool:  # better by more than the two rows' spread over seeds
        return score(e, metric) - score(o, metric) > o.std.get(metric, 0.0) + e.std.get(metric, 0.0)

    for e in entries:
        e.rank = 1 + sum(beats(o, e, distortion) for o in entries if o is not e)
        e.pareto = not any(beats(o, e, distortion) and beats(o, e, editability) for o in entries if o is not e)
    return sorted(entries, key=lambda e: (e.rank, score(e, distortion)))


def shown_rank(entries: list[Entry], e: Entry) -> str:
    """A row's rank, `=k` where another row shares it (their values within their seeds' spread)."""
    return f"={e.rank}" if sum(o.rank == e.rank for o in entries) > 1 else str(e.rank)


def digits(values: list[float], least: int = 4, most: int = 10) -> int:
    """Significant digits (at least `least`) that write every two different `values` differently."""
    distinct = sorted(set(values))
    for d in range(least, most + 1):
        if len({f"{v:.{d}g}" for v in distinct}) == len(distinct):
            return d
    return most


def columns(entries: list[Entry], distortion: str, editability: str) -> list[str]:
    seen = {k for e in entries for k in e.mean}
    return [distortion, editability, *[k for k in SHOWN if k in seen and k not in (distortion, editability)]]


def cell(e: Entry, k: str, sep: str = " ", d: int = 4) -> str:
    """A row's mean of `k` to `d` significant digits, ± its std over seeds where it has several."""
    if k not in e.mean:
        return "–"
    v, s = e.mean[k], e.std[k]
    return f"{v:.{d}g}" + (f"{sep}± {s:.2g}" if e.seeds > 1 else "")


def precision(entries: list[Entry], cols: list[str]) -> dict[str, int]:
    """Per column, the digits that tell its rows' values apart (`digits`)."""
    return {k: digits([e.mean[k] for e in entries if k in e.mean]) for k in cols}


def runs_cell(e: Entry) -> str:
    """`runs` as shown: the runs, and the seeds where fewer (the spread is over seeds)."""
    return str(e.n) if e.seeds == e.n else f"{e.n} ({e.seeds} seed{'s' if e.seeds > 1 else ''})"


def notes(entries: list[Entry]) -> list[str]:
    """Lines under the table: re-evaluations left out, different image counts, how ranks and the front treat the
    seeds' spread."""
    out = [f"{e.name}: {e.replaced} re-evaluation(s) of a measurement already on the board left out (the newest "
           "of each kept)" for e in entries if e.replaced]
    if note := image_counts_note(entries):
        out.append(note)
    if any(e.seeds > 1 for e in entries):
        out.append("mean ± std over training seeds; rows within each other's spread (|Δ| ≤ std + std) share a rank "
                   "(=k) and do not push each other off the Pareto front")
    return out


def markdown(entries: list[Entry], distortion: str, editability: str) -> str:
    cols = columns(entries, distortion, editability)
    d = precision(entries, cols)
    head = ["rank", "method", "runs", *cols, "pareto", *front_head(entries)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        lines.append("| " + " | ".join([shown_rank(entries, e), e.name, runs_cell(e), *[cell(e, k, d=d[k])
                                                                                       for k in cols],
                                        "✓" if e.pareto else "", *front_cell(entries, e)]) + " |")
    said = "".join(f"\n{line}\n" for line in notes(entries))
    best = [f"- {e.name}: " + "; ".join(e.checkpoints) for e in entries if e.checkpoints]
    best = "\n**Checkpoints** (a training run's best evaluation, or the file evaluated):\n\n" + "\n".join(best) + \
        "\n" if best else ""
    return "\n".join(lines) + "\n" + said + best


def table(entries: list[Entry], distortion: str, editability: str) -> tuple[list[str], list[list]]:
    """(header, rows) of the full board: rank (shared by rows within their spread), name, method, runs, each
    metric's mean and std (over seeds), pareto, the checkpoints, then the seeds, the evaluations and the run
    folders (None where a row lacks a metric)."""
    cols = columns(entries, distortion, editability)
    head = ["rank", "name", "method", "runs", *[c for k in cols for c in (k, f"{k}_std")], "pareto", "checkpoints",
            "seeds", "evaluations", "run_dirs", "sweep_front"]
    rows = [[e.rank, e.name, e.method, e.n, *[c for k in cols for c in (e.mean.get(k), e.std.get(k))],
             int(e.pareto), "; ".join(e.checkpoints), e.seeds, e.evaluations, "; ".join(e.runs), int(e.sweep_front)]
            for e in entries]
    return head, rows


def write_csv(entries: list[Entry], distortion: str, editability: str, path: Path) -> Path:
    head, rows = table(entries, distortion, editability)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerows([head, *[["" if v is None else v for v in row] for row in rows]])
    return atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def plot(entries: list[Entry], distortion: str, editability: str, path: Path) -> Path:
    """The trade-off: one point per entry (± std bars), the Pareto front drawn through its members."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    for rank_, e in enumerate(entries, 1):  # points carry their rank (no name can overlap); the key names them
        ax.errorbar(e.mean[distortion], e.mean[editability], xerr=e.std[distortion], yerr=e.std[editability],
                    fmt="o" if e.pareto else "s", color="C3" if e.pareto else "C0", capsize=3, ms=6,
                    label=f"{rank_}  {e.name}")
        ax.annotate(str(rank_), (e.mean[distortion], e.mean[editability]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8, weight="bold")
    front = sorted((e for e in entries if e.pareto), key=lambda e: e.mean[distortion])
    if len(front) > 1:
        ax.plot([e.mean[distortion] for e in front], [e.mean[editability] for e in front], "--", color="C3",
                lw=1, label="Pareto front")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False, handletextpad=0.3)
    arrow = {True: "higher is better", False: "lower is better"}
    ax.set_xlabel(f"distortion: {distortion} ({arrow[higher_is_better(distortion)]})")
    ax.set_ylabel(f"editability: {editability} ({arrow[higher_is_better(editability)]})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def html_page(entries: list[Entry], distortion: str, editability: str, plot_png: Path, title: str,
              history_png: Path | None = None) -> str:
    """One page with everything inlined (table, plot, the rows over earlier snapshots where given, and the sample
    grids of records that list some, as `make demo`'s do): opens from disk, no server."""
    def img(path: str | Path) -> str:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).name)}">'

    cols = columns(entries, distortion, editability)
    d = precision(entries, cols)
    rows = "".join(
        "<tr" + (' class="front"' if e.pareto else "") + f"><td>{shown_rank(entries, e)}</td>"
        f"<td>{html.escape(e.name)}</td><td>{html.escape(runs_cell(e))}</td>"
        + "".join(f"<td>{html.escape(cell(e, k, chr(10), d[k])).replace('± ', '±&nbsp;')}</td>" for k in cols)
        + f"<td>{'✓' if e.pareto else ''}</td></tr>"
        for e in entries)
    grids = "".join(f"<figure>{img(s)}<figcaption>{html.escape(e.name)}: {html.escape(Path(s).stem)}"
                    "</figcaption></figure>" for e in entries for s in e.samples if Path(s).is_file())
    note = "".join(f"<p><b>{html.escape(line)}</b></p>" for line in notes(entries))
    head = "".join(f"<th>{html.escape(k).replace('_', '_<wbr>')}</th>" for k in ["rank", "method", "runs", *cols,
                                                                                  "pareto"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}.scroll{{overflow-x:auto}}
table{{border-collapse:collapse;font-size:12px}}th{{font-size:11px}}
td,th{{border:1px solid #ccc;padding:3px 5px;text-align:right;white-space:pre-line}}td:nth-child(2){{text-align:left}}
tr.front{{background:#fdecea}}img{{max-width:100%}}figure{{margin:1em 0}}</style></head><body>
<h1>{html.escape(title)}</h1><p>Ranked on <b>{html.escape(distortion)}</b>; Pareto front against
<b>{html.escape(editability)}</b> (highlighted).</p>{note}
<div class="scroll"><table><tr>{head}</tr>{rows}</table></div><h2>Trade-off</h2>{img(plot_png)}
{"<h2>Over time</h2>" + img(history_png) if history_png else ""}
{"<h2>Samples</h2>" + grids if grids else ""}</body></html>"""
