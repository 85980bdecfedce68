"""What `ganinv-leaderboard` runs: records -> a ranked Rich table with Pareto flags, and Markdown, CSV, PNG and HTML
files (conf/leaderboard.yaml)."""

from __future__ import annotations

from pathlib import Path

from ganinv.errors import OptionError


def load(source: str) -> tuple[list[dict], list[tuple[str, str]]]:
    """The records that count (one metric card: `same_card`), and the runs skipped with why."""
    from ganinv.metrics.records import read_runs, same_card, wandb_project_records

    records, skipped = (wandb_project_records(source[len("wandb:"):]), []) if source.startswith("wandb:") else \
        read_runs(source)
    records, other_cards = same_card(records)
    return records, skipped + other_cards


def leaderboard(cfg) -> list:
    """Prints and writes the board of `cfg.input` and returns its rows; with `baseline=`, also each row's change
    (raising `Regressions` where `fail_on=` says a row got worse); `save=` keeps it as a snapshot; `history=`
    plots the rows over a folder of snapshots."""
    from rich.console import Console

    from ganinv.metrics import report, snapshots

    gate = snapshots.parse_gate(cfg.fail_on)  # mistakes in these options: before any work
    if gate and not cfg.baseline:
        raise OptionError(f"fail_on={cfg.fail_on} compares against a baseline: give baseline=<snapshot or folder>.")
    if cfg.history and not cfg.output:
        raise OptionError("history= draws history.png into output=: give output=<folder>.")
    for key in ("baseline", "history"):
        if cfg[key] and not Path(str(cfg[key])).exists():
            raise OptionError(f"{key}={cfg[key]}: no such snapshot or folder.")
    entries = board(cfg)
    cols = report.columns(entries, cfg.distortion, cfg.editability)
    if cfg.show != "all":  # the terminal's table; the files keep every metric
        cols = [c for c in cols if c in (cfg.distortion, cfg.editability, *cfg.show)]
    console = Console()
    table, left_out = terminal_table(entries, cols, cfg, console.width)
    console.print(table)
    if left_out:
        print(f"{len(left_out)} more column(s) for a wider terminal ({', '.join(left_out)}); the files keep all")
    for line in report.notes(entries):
        print(line)
    snap = snapshots.snapshot(entries, str(cfg.input), str(cfg.distortion), str(cfg.editability))
    regressed = against_baseline(cfg, snap["rows"], cols, gate) if cfg.baseline else []
    history = None
    if cfg.history:
        history = snapshots.plot_history([*snapshots.snapshots_in(Path(str(cfg.history))), snap],
                                         [str(cfg.distortion), str(cfg.editability)],
                                         Path(str(cfg.output)) / "history.png")
    if cfg.output:
        write_board(entries, cfg, Path(str(cfg.output)), history)
    if cfg.save:
        kept = snapshots.save(snap, Path(str(cfg.save)))
        write_board(entries, cfg, kept, None, html=False)
        print(f"saved the board as snapshot {kept}")
    if cfg.wandb.mode != "disabled":
        log_to_wandb(cfg, entries, snap)
    if regressed:
        raise snapshots.Regressions("\n".join(regressed))
    return entries


def board(cfg) -> list:
    """The ranked rows of `cfg.input`, after printing the runs left out (pruned trials apart)."""
    from ganinv.checkpoints import CheckpointError

    records, skipped = load(str(cfg.input))
    pruned = [(source, why) for source, why in skipped if why.startswith("pruned")]
    for source, why in skipped:
        if (source, why) not in pruned:
            print(f"skipped {source}: {why}")
    if pruned:
        print(f"{len(pruned)} trial(s) pruned by their sweep, not ranked:")
        for source, why in pruned:
            print(f"  {Path(source).parent.name}: {why}")
    if not records:
        raise CheckpointError(cfg.input, "holds no evaluation records.",
                              "Point input= at the folder ganinv-eval wrote its records to (output=...json).")
    entries = ranked(records, str(cfg.distortion), str(cfg.editability))
    if not str(cfg.input).startswith("wandb:"):
        mark_sweep_fronts(entries, Path(str(cfg.input)))
    return entries


def ranked(records: list[dict], distortion: str, editability: str) -> list:
    from ganinv.metrics import report

    try:
        return report.rank(report.aggregate(records), distortion, editability)
    except KeyError as err:
        raise OptionError(f"{err.args[0]} (docs/evaluation.md).") from None


def against_baseline(cfg, rows: list[dict], cols: list[str], gate) -> list[str]:
    """Prints each row's change against `cfg.baseline`; returns the regressions `gate` finds."""
    from ganinv.metrics import snapshots

    def rows_of_records(folder: Path) -> list[dict]:
        entries = ranked(load(str(folder))[0], str(cfg.distortion), str(cfg.editability))
        return [snapshots.row(e, e.records) for e in entries]

    base, what = snapshots.baseline_rows(Path(str(cfg.baseline)), rows_of_records)
    changes = snapshots.compare(rows, base)
    for line in snapshots.change_lines(changes, cols, what):
        print(line)
    regressed = snapshots.regressions(changes, gate)
    if gate:
        print(f"fail_on {cfg.fail_on}: " + (f"{len(regressed)} regression(s)" if regressed else "no regression"))
    return regressed


def write_board(entries: list, cfg, out: Path, history: Path | None, html: bool = True) -> None:
    """leaderboard.md and .csv in `out`; with `html`, the trade-off plot and the HTML page too."""
    from ganinv.metrics import report

    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.md").write_text(report.markdown(entries, cfg.distortion, cfg.editability))
    report.write_csv(entries, cfg.distortion, cfg.editability, out / "leaderboard.csv")
    if not html:
        return
    png = report.plot(entries, cfg.distortion, cfg.editability, out / "tradeoff.png")
    (out / "leaderboard.html").write_text(report.html_page(entries, cfg.distortion, cfg.editability, png,
                                                           str(cfg.title), history))
    print(f"wrote {out}/leaderboard.md, leaderboard.csv, tradeoff.png, leaderboard.html"
          + (", history.png" if history else ""))


def mark_sweep_fronts(entries: list, folder: Path) -> None:
    """Flags the rows whose runs are on the Pareto front of an Optuna sweep under `folder` (its
    `optimization_results.yaml`)."""
    import yaml

    from ganinv.sweeps.results import RESULTS

    front = set()
    for path in folder.rglob(RESULTS):
        results = yaml.safe_load(path.read_text()) or {}
        front |= {(path.parent / t["run"]).resolve() for t in results.get("front") or [] if t.get("run")}
    for e in entries:
        e.sweep_front = any(Path(run).resolve() in front for run in e.runs)


def terminal_table(entries: list, cols: list[str], cfg, width: int):
    """The ranked Rich table and the metric columns left out so that it fits `width` characters with the names
    whole (the last metrics go first; the two axes stay)."""
    from rich.console import Console
    from rich.table import Table

    from ganinv.metrics import report

    d = report.precision(entries, cols)
    left_out: list[str] = []
    while True:
        table = Table(title=f"{cfg.title}: ranked on {cfg.distortion}, Pareto front vs {cfg.editability}")
        for c in ["#", "method", "runs", *cols, "pareto", *report.front_head(entries)]:
            table.add_column(c, justify="left" if c == "method" else "right", no_wrap=c == "method")
        for e in entries:
            table.add_row(report.shown_rank(entries, e), e.name, report.runs_cell(e),
                          *[report.cell(e, k, d=d[k]) for k in cols], "✓" if e.pareto else "",
                          *report.front_cell(entries, e), style="bold" if e.pareto else None)
        needed = Console(width=10_000).measure(table).maximum
        if needed <= width or len(cols) <= 2:
            return table, left_out
        left_out.insert(0, cols.pop())


def log_to_wandb(cfg, entries: list, snap: dict) -> None:
    """The board as a W&B run of job type `leaderboard`: its full table (as the CSV) and the trade-off plot, and
    the snapshot as a versioned artifact `leaderboard` (its snapshot.json and leaderboard.csv; offline too)."""
    import json
    import tempfile

    import wandb

    from ganinv.loggers.wandb import init_run
    from ganinv.metrics import report

    w = cfg.wandb
    run = init_run(str(w.dir or cfg.output or "."), w.project, w.entity, w.group, list(w.tags), str(cfg.title),
                   str(w.mode), {"input": str(cfg.input), "distortion": cfg.distortion,
                                 "editability": cfg.editability}, job_type="leaderboard")
    head, rows = report.table(entries, str(cfg.distortion), str(cfg.editability))
    with tempfile.TemporaryDirectory() as tmp:
        png = report.plot(entries, str(cfg.distortion), str(cfg.editability), Path(tmp) / "tradeoff.png")
        run.log({"leaderboard": wandb.Table(columns=head, data=rows), "tradeoff": wandb.Image(str(png))})
        (Path(tmp) / "snapshot.json").write_text(json.dumps(snap, indent=1, default=str))
        report.write_csv(entries, str(cfg.distortion), str(cfg.editability), Path(tmp) / "leaderboard.csv")
        artifact = wandb.Artifact("leaderboard", type="leaderboard", metadata={
            k: snap[k] for k in ("created", "ganinv_version", "git_commit", "input", "axes")})
        artifact.add_file(str(Path(tmp) / "snapshot.json"))
        artifact.add_file(str(Path(tmp) / "leaderboard.csv"))
        run.log_artifact(artifact)
    run.finish()
    print(f"logged the leaderboard to W&B run {run.id} ({w.mode})")
