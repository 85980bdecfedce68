"""The study's tables, plots and findings from its records (evaluate.py) and its ReStyle runs.

    python experiments/reproductions/toy_tradeoff/report.py   ->  results/<renders|samples>/leaderboard.*,
                                                                 results/restyle_steps.json, results/findings.json
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ganinv.metrics import report
from ganinv.metrics.records import read_records

HERE = Path(__file__).resolve().parent
AXES = ("mse", "lec")


def leaderboards(out: Path) -> dict[str, dict]:
    tables = {}
    for data in ("renders", "samples", "long", "toolbox", "feature_space"):
        if not (HERE / "records" / data).is_dir():
            continue
        entries = report.rank(report.aggregate(read_records(HERE / "records" / data)), *AXES)
        folder = out / data
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "leaderboard.md").write_text(report.markdown(entries, *AXES))
        report.write_csv(entries, *AXES, folder / "leaderboard.csv")
        png = report.plot(entries, *AXES, folder / "tradeoff.png")
        (folder / "leaderboard.html").write_text(report.html_page(entries, *AXES, png, f"toy trade-off ({data})"))
        tables[data] = {e.name: {"n": e.n, "mean": e.mean, "std": e.std, "pareto": e.pareto} for e in entries}
    return tables


@torch.no_grad()
def restyle_steps(runs: Path, n_steps: int = 5) -> dict[str, list[list[float]]]:
    """Held-out MSE after each refinement step (3 trained, 2 beyond), per variant and seed."""
    from ganinv.methods import load_method
    from ganinv.toy import render

    x = render(32, 64, 1_000_007, frontal=False).images  # evaluate.py's held-out renders (data seed 7)
    out = {}
    for name in ("restyle_psp", "restyle_e4e"):
        out[name] = []
        for ckpt in sorted(runs.glob(f"{name}/seed*/checkpoints/last.ckpt")):
            m = load_method(ckpt).eval()
            steps = m.invert_steps(x, n_steps)
            out[name].append([float(((s.image.clamp(-1, 1) - x) ** 2).mean()) for s in steps])
    return out


BEYOND = ("HyperStyle", "HFGI", "e4e + PTI")  # per-image generator state on e4e's codes
SIMILAR = 0.10  # "a similar editability": LEC and leakage at most 10 % above e4e's, edit gain at most 10 % below


def beyond_the_code(t: dict, data: str, claim, m) -> None:
    """The 2022 methods' claims: on e4e's codes, they reconstruct better at a similar editability (LEC of the edits
    they render through their per-image state, attribute gain per unit edit, leakage into other attributes); PTI is
    the slowest."""
    present = [n for n in BEYOND if n in t[data]]
    for name in present:
        mse, e4e = m(data, name, "mse"), m(data, "e4e", "mse")
        claim(data, f"{name} reconstructs better than e4e", mse < e4e, f"MSE {mse:.4f} vs {e4e:.4f}; LPIPS-like "
              f"perceptual {m(data, name, 'perceptual'):.4f} vs {m(data, 'e4e', 'perceptual'):.4f}")
        gain, e_gain = m(data, name, "edit_gain"), m(data, "e4e", "edit_gain")
        leak, e_leak = m(data, name, "edit_others"), m(data, "e4e", "edit_others")
        lec, e_lec = m(data, name, "lec"), m(data, "e4e", "lec")
        claim(data, f"{name} edits about as well as e4e (LEC, gain, leakage within {SIMILAR:.0%})",
              lec <= (1 + SIMILAR) * e_lec and gain >= (1 - SIMILAR) * e_gain and leak <= (1 + SIMILAR) * e_leak,
              f"edit gain {gain:.4f} vs {e_gain:.4f}; leakage {leak:.4f} vs {e_leak:.4f}; "
              f"LEC {lec:.3g} vs {e_lec:.3g}")
    pti = [n for n in t[data] if "PTI" in n]
    if pti:
        slowest = max(t[data], key=lambda n: m(data, n, "seconds_per_image"))
        shown = [n for n in dict.fromkeys([*pti, *present, "e4e"]) if n in t[data]]
        claim(data, "PTI is the slowest", slowest in pti, f"slowest: {slowest} "
              f"({m(data, slowest, 'seconds_per_image'):.3g} s per image); "
              + ", ".join(f"{n} {m(data, n, 'seconds_per_image'):.3g} s" for n in shown))


REFINERS = ("e4e + PTI", "e4e + SAM", "e4e + DHR")


def toolbox(t: dict, claim, m) -> None:
    """GAN Inverter's methods against the e4e retrained beside them (records/toolbox): LSAP aligns codes with the
    generator's (lower SND) and edits better at a similar distortion; SAM and DHR lower e4e's distortion with its
    edits kept; DHR has the best fidelity of the refiners."""
    data = "toolbox"

    def v(name: str, key: str) -> float:
        return m(data, name, key)

    def versus(name: str, *keys: str, digits: int = 4) -> str:
        return "; ".join(f"{k} {v(name, k):.{digits}g} vs {v('e4e', k):.{digits}g}" for k in keys)

    claim(data, "LSAP's codes are better aligned than e4e's (SND)", v("LSAP", "snd") < v("e4e", "snd"),
          versus("LSAP", "snd"))
    claim(data, "LSAP edits better than e4e (LEC, edit gain)", v("LSAP", "lec") < v("e4e", "lec")
          and v("LSAP", "edit_gain") > v("e4e", "edit_gain"), versus("LSAP", "lec", "edit_gain", "edit_others"))
    claim(data, f"LSAP's distortion is similar to e4e's (MSE within {SIMILAR:.0%})",
          abs(v("LSAP", "mse") / v("e4e", "mse") - 1) <= SIMILAR, versus("LSAP", "mse"))
    for name in ("e4e + SAM", "e4e + DHR"):
        claim(data, f"{name} reconstructs better than e4e", v(name, "mse") < v("e4e", "mse"),
              versus(name, "mse", "perceptual"))
        claim(data, f"{name} keeps e4e's edits (LEC, gain, leakage within {SIMILAR:.0%})",
              v(name, "lec") <= (1 + SIMILAR) * v("e4e", "lec")
              and v(name, "edit_gain") >= (1 - SIMILAR) * v("e4e", "edit_gain")
              and v(name, "edit_others") <= (1 + SIMILAR) * v("e4e", "edit_others"),
              versus(name, "edit_gain", "edit_others", "lec"))
    for key in ("mse", "perceptual"):
        best = min(REFINERS, key=lambda n, k=key: v(n, k))
        claim(data, f"DHR has the best fidelity of the refiners ({key})", best == "e4e + DHR",
              ", ".join(f"{n} {v(n, key):.4g}" for n in REFINERS))


ENCODERS_HERE = ("e4e", "HFGI", "Feature-Style", "StyleRes", "SFE")  # records/feature_space


def feature_space(t: dict, claim, m) -> None:
    """The methods that predict generator features (records/feature_space): Feature-Style reconstructs better than
    the W+ encoder at a similar editability; StyleRes reconstructs better than its base and, through its cycle,
    keeps the edits better than HFGI; SFE has the lowest distortion of every encoder at a comparable edit quality
    (its attribute FID of edits and its edit gain)."""
    data = "feature_space"

    def v(name: str, key: str) -> float:
        return m(data, name, key)

    def versus(name: str, other: str, *keys: str) -> str:
        return "; ".join(f"{k} {v(name, k):.4g} vs {v(other, k):.4g}" for k in keys)

    def edits_like(name: str, other: str) -> bool:
        return (v(name, "lec") <= (1 + SIMILAR) * v(other, "lec")
                and v(name, "edit_gain") >= (1 - SIMILAR) * v(other, "edit_gain")
                and v(name, "edit_others") <= (1 + SIMILAR) * v(other, "edit_others"))

    for name in ("Feature-Style", "StyleRes"):
        claim(data, f"{name} reconstructs better than e4e", v(name, "mse") < v("e4e", "mse"),
              versus(name, "e4e", "mse", "perceptual"))
    claim(data, f"Feature-Style edits about as well as e4e (LEC, gain, leakage within {SIMILAR:.0%})",
          edits_like("Feature-Style", "e4e"), versus("Feature-Style", "e4e", "edit_gain", "edit_others", "lec"))
    claim(data, "StyleRes keeps edits better than HFGI (edit gain, attribute FID of edits)",
          v("StyleRes", "edit_gain") > v("HFGI", "edit_gain") and v("StyleRes", "fid_attr") < v("HFGI", "fid_attr"),
          versus("StyleRes", "HFGI", "edit_gain", "fid_attr", "mse"))
    for key in ("mse", "perceptual"):
        best = min(ENCODERS_HERE, key=lambda n, k=key: v(n, k))
        claim(data, f"SFE has the lowest distortion of these encoders ({key})", best == "SFE",
              ", ".join(f"{n} {v(n, key):.4g}" for n in ENCODERS_HERE))
    best_fid = min(ENCODERS_HERE, key=lambda n: v(n, "fid_attr"))
    claim(data, f"SFE's edit quality is comparable: attribute FID of edits within {SIMILAR:.0%} of the best "
          f"encoder's, edit gain at least {1 - SIMILAR:.0%} of e4e's",
          v("SFE", "fid_attr") <= (1 + SIMILAR) * v(best_fid, "fid_attr")
          and v("SFE", "edit_gain") >= (1 - SIMILAR) * v("e4e", "edit_gain"),
          f"fid_attr SFE {v('SFE', 'fid_attr'):.4g} vs best ({best_fid}) {v(best_fid, 'fid_attr'):.4g}; "
          + versus("SFE", "e4e", "edit_gain", "edit_others", "lec"))


def findings(t: dict, steps: dict) -> list[dict]:
    """Each published claim as a measured comparison on both data sets (means over seeds)."""
    out = []

    def claim(data, text, holds, detail):
        out.append({"data": data, "claim": text, "holds": bool(holds), "measured": detail})

    def m(data, name, key):
        return t[data][name]["mean"][key]

    for data in ("renders", "samples"):
        a, b = m(data, "pSp (W+)", "mse"), m(data, "pSp (W)", "mse")
        c, d = m(data, "Optimisation (W+)", "mse"), m(data, "Optimisation (W)", "mse")
        claim(data, "W+ reconstructs better than W", a < b and c < d,
              f"pSp MSE W+ {a:.4f} vs W {b:.4f}; optimisation W+ {c:.4f} vs W {d:.4f}")
        for key in ("w_layer_spread", "p_norm", "lec"):  # lower is better on each
            e, p = m(data, "e4e", key), m(data, "pSp (W+)", key)
            claim(data, f"e4e's codes are nearer W / edit better than pSp's ({key})", e < p,
                  f"e4e {e:.4g} vs pSp {p:.4g}")
        e, p = m(data, "e4e", "edit_others"), m(data, "pSp (W+)", "edit_others")
        claim(data, "e4e's edits leak less into other attributes than pSp's (edit_others)", e < p,
              f"e4e {e:.4g} vs pSp {p:.4g}")
        e, p = m(data, "e4e", "mse"), m(data, "pSp (W+)", "mse")
        claim(data, "e4e pays in distortion", e > p, f"MSE e4e {e:.4f} vs pSp {p:.4f}")
        names = list(t[data])
        best = min(names, key=lambda n: m(data, n, "mse"))
        worst_lec = max(names, key=lambda n: m(data, n, "lec"))
        worst_p = max(names, key=lambda n: m(data, n, "p_norm"))
        claim(data, "optimisation has the lowest distortion", best.startswith("Optimisation"), f"lowest MSE: {best}")
        claim(data, "optimisation has the worst editability", worst_lec.startswith("Optimisation")
              and worst_p.startswith("Optimisation"), f"highest LEC: {worst_lec}; highest P-norm: {worst_p}")
        reg, unreg = "In-Domain + regularised optimiser", "In-Domain + unregularised optimiser"
        for other in (unreg, "Optimisation (W+)"):
            r, o = m(data, reg, "p_norm"), m(data, other, "p_norm")
            rl, ol = m(data, reg, "lec"), m(data, other, "lec")
            claim(data, f"In-Domain's regulariser keeps codes in domain (vs {other})", r < o and rl < ol,
                  f"P-norm {r:.4g} vs {o:.4g}; LEC {rl:.3g} vs {ol:.3g}; MSE {m(data, reg, 'mse'):.4f} vs "
                  f"{m(data, other, 'mse'):.4f}")
        r, e = m(data, "In-Domain + regularised optimiser", "mse"), m(data, "In-Domain encoder", "mse")
        claim(data, "the regularised optimiser lowers the In-Domain encoder's distortion", r < e,
              f"MSE {r:.4f} vs {e:.4f}")
        beyond_the_code(t, data, claim, m)
    if "long" in t:  # 500 steps (ganinv's default optimiser budget; single runs) against the study's budget
        for space in ("W", "W+"):
            name, short = f"Optimisation ({space}, 500 steps)", f"Optimisation ({space})"
            mse, mse100 = m("long", name, "mse"), m("renders", short, "mse")
            for key in ("lec", "p_norm"):
                v, v100 = m("long", name, key), m("renders", short, key)
                above = sorted(n for n in t["renders"] if m("renders", n, key) > v)
                claim("renders", f"{space} optimisation at 500 steps has the worst editability ({key})", not above,
                      f"{key} {v:.3g} (100 steps: {v100:.3g}; MSE {mse:.4f} vs {mse100:.4f}); "
                      f"higher: {', '.join(above) or 'none'}")
        reg, unreg = "In-Domain + regularised optimiser (500 steps)", "In-Domain + unregularised optimiser (500 steps)"
        if reg in t["long"] and unreg in t["long"]:
            (rp, up), (rl, ul), (rm, um) = ((m("long", reg, k), m("long", unreg, k)) for k in ("p_norm", "lec", "mse"))
            claim("renders", "In-Domain's regulariser keeps codes in domain at 500 steps (vs unregularised)",
                  rp < up and rl < ul, f"P-norm {rp:.4g} vs {up:.4g}; LEC {rl:.3g} vs {ul:.3g}; MSE {rm:.4f} vs "
                  f"{um:.4f} (seed 0)")
    if "toolbox" in t:
        toolbox(t, claim, m)
    if "feature_space" in t:
        feature_space(t, claim, m)
    for name, runs in steps.items():
        mean = [sum(r[k] for r in runs) / len(runs) for k in range(len(runs[0]))]
        out.append({"data": "renders", "claim": f"{name} improves over its (3 trained) steps",
                    "holds": mean[0] > mean[1] > mean[2], "measured": "MSE per step " +
                    ", ".join(f"{v:.4f}" for v in mean)})
    return out


def main() -> None:
    out = HERE / "results"
    tables = leaderboards(out)
    steps = restyle_steps(HERE / "runs")
    if all(steps.values()):
        (out / "restyle_steps.json").write_text(json.dumps(steps, indent=2))
    else:  # the ReStyle runs are not here (runs/ is not committed): the figures measured when they were
        steps = json.loads((out / "restyle_steps.json").read_text())
    found = findings(tables, steps)
    (out / "findings.json").write_text(json.dumps(found, indent=2))
    for f in found:
        print(f"[{'holds' if f['holds'] else 'DOES NOT HOLD'}] ({f['data']}) {f['claim']}: {f['measured']}")
    for data in tables:
        print(f"\n## {data}\n" + (out / data / "leaderboard.md").read_text())


if __name__ == "__main__":
    main()
