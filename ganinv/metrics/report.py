"""The leaderboard: records grouped by name (mean ± std over seeds), ranked on a distortion metric, with Pareto
flags against an editability metric; written as Markdown, CSV, a PNG of the trade-off and a self-contained HTML
page."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from ganinv.checkpoints import atomic_write

HIGHER_IS_BETTER = ("psnr", "ssim", "ms_ssim", "id_sim", "edit_gain", "edit_id", "images_per_second")
SHOWN = ("mse", "psnr", "ssim", "perceptual", "lpips", "lpips_alex", "id_sim", "lec", "p_norm", "w_layer_spread",
         "edit_gain", "edit_others", "edit_id", "fid_rec", "fid_edit", "seconds_per_image")


def higher_is_better(metric: str) -> bool:
    return any(metric == k or metric.startswith(k + "_") for k in HIGHER_IS_BETTER)


@dataclass
class Entry:
    """One leaderboard row: the records sharing a name."""

    name: str
    method: str
    n: int
    mean: dict[str, float]
    std: dict[str, float]
    samples: list[str] = field(default_factory=list)
    pareto: bool = False


def aggregate(records: list[dict]) -> list[Entry]:
    """Entries by record name; metrics (and `seconds_per_image`) averaged, with the sample std (0 for one)."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["name"], []).append(r)
    out = []
    for name, recs in groups.items():
        values: dict[str, list[float]] = {}
        for r in recs:
            row = {**r["metrics"], **{k: v for k, v in (r.get("timing") or {}).items() if k != "images"}}
            for k, v in row.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    values.setdefault(k, []).append(float(v))
        mean = {k: sum(v) / len(v) for k, v in values.items()}
        std = {k: (sum((x - mean[k]) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
               for k, v in values.items()}
        samples = [s for r in recs for s in r.get("samples", [])]
        out.append(Entry(name, recs[0]["method"], len(recs), mean, std, samples))
    return out


def rank(entries: list[Entry], distortion: str, editability: str) -> list[Entry]:
    """Sorted best-first on `distortion`; `pareto` set on entries no other entry beats on both axes."""
    missing = [e.name for e in entries if distortion not in e.mean or editability not in e.mean]
    if missing:
        raise KeyError(f"records of {', '.join(missing)} have no {distortion!r} or {editability!r} metric")

    def score(e: Entry, metric: str) -> float:  # lower is better
        return -e.mean[metric] if higher_is_better(metric) else e.mean[metric]

    for e in entries:
        d, m = score(e, distortion), score(e, editability)
        e.pareto = not any(score(o, distortion) <= d and score(o, editability) <= m and
                           (score(o, distortion) < d or score(o, editability) < m) for o in entries if o is not e)
    return sorted(entries, key=lambda e: score(e, distortion))


def columns(entries: list[Entry], distortion: str, editability: str) -> list[str]:
    seen = {k for e in entries for k in e.mean}
    return [distortion, editability, *[k for k in SHOWN if k in seen and k not in (distortion, editability)]]


def cell(e: Entry, k: str) -> str:
    if k not in e.mean:
        return "–"
    v, s = e.mean[k], e.std[k]
    return f"{v:.4g}" + (f" ± {s:.2g}" if e.n > 1 else "")


def markdown(entries: list[Entry], distortion: str, editability: str) -> str:
    cols = columns(entries, distortion, editability)
    head = ["rank", "method", "runs", *cols, "pareto"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, e in enumerate(entries, 1):
        lines.append("| " + " | ".join([str(i), e.name, str(e.n), *[cell(e, k) for k in cols],
                                        "✓" if e.pareto else ""]) + " |")
    return "\n".join(lines) + "\n"


def write_csv(entries: list[Entry], distortion: str, editability: str, path: Path) -> Path:
    cols = columns(entries, distortion, editability)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "name", "method", "runs", *[c for k in cols for c in (k, f"{k}_std")], "pareto"])
    for i, e in enumerate(entries, 1):
        w.writerow([i, e.name, e.method, e.n, *[c for k in cols for c in (e.mean.get(k, ""), e.std.get(k, ""))],
                    int(e.pareto)])
    return atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def plot(entries: list[Entry], distortion: str, editability: str, path: Path) -> Path:
    """The trade-off: one point per entry (± std bars), the Pareto front drawn through its members."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for e in entries:
        ax.errorbar(e.mean[distortion], e.mean[editability], xerr=e.std[distortion], yerr=e.std[editability],
                    fmt="o" if e.pareto else "s", color="C3" if e.pareto else "C0", capsize=3, ms=6)
        ax.annotate(e.name, (e.mean[distortion], e.mean[editability]), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    front = sorted((e for e in entries if e.pareto), key=lambda e: e.mean[distortion])
    if len(front) > 1:
        ax.plot([e.mean[distortion] for e in front], [e.mean[editability] for e in front], "--", color="C3",
                lw=1, label="Pareto front")
        ax.legend(loc="best", fontsize=8)
    arrow = {True: "higher is better", False: "lower is better"}
    ax.set_xlabel(f"distortion: {distortion} ({arrow[higher_is_better(distortion)]})")
    ax.set_ylabel(f"editability: {editability} ({arrow[higher_is_better(editability)]})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def html_page(entries: list[Entry], distortion: str, editability: str, plot_png: Path, title: str) -> str:
    """One page with everything inlined (table, plot, sample grids): opens from disk, no server."""
    def img(path: str | Path) -> str:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).name)}">'

    cols = columns(entries, distortion, editability)
    rows = "".join(
        "<tr" + (' class="front"' if e.pareto else "") + f"><td>{i}</td><td>{html.escape(e.name)}</td><td>{e.n}</td>"
        + "".join(f"<td>{html.escape(cell(e, k))}</td>" for k in cols) + f"<td>{'✓' if e.pareto else ''}</td></tr>"
        for i, e in enumerate(entries, 1))
    grids = "".join(f"<figure>{img(s)}<figcaption>{html.escape(e.name)}: {html.escape(Path(s).stem)}"
                    "</figcaption></figure>" for e in entries for s in e.samples if Path(s).is_file())
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ["rank", "method", "runs", *cols, "pareto"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:nth-child(2){{text-align:left}}
tr.front{{background:#fdecea}}img{{max-width:100%}}figure{{margin:1em 0}}</style></head><body>
<h1>{html.escape(title)}</h1><p>Ranked on <b>{html.escape(distortion)}</b>; Pareto front against
<b>{html.escape(editability)}</b> (highlighted). Mean ± std over runs.</p>
<table><tr>{head}</tr>{rows}</table><h2>Trade-off</h2>{img(plot_png)}
{"<h2>Samples</h2>" + grids if grids else ""}</body></html>"""
