"""What `ganinv-leaderboard` runs: records -> a ranked Rich table with Pareto flags, and Markdown, CSV, PNG and HTML
files (conf/leaderboard.yaml)."""

from __future__ import annotations

from pathlib import Path


def load(source: str) -> tuple[list[dict], list[tuple[str, str]]]:
    """The records that count, and the runs skipped with why."""
    from ganinv.metrics.records import read_runs, wandb_project_records

    return (wandb_project_records(source[len("wandb:"):]), []) if source.startswith("wandb:") else read_runs(source)


def leaderboard(cfg) -> list:
    from rich.console import Console

    from ganinv.checkpoints import CheckpointError
    from ganinv.metrics import report
    from ganinv.workflows.command_line import OptionError

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
    try:
        entries = report.rank(report.aggregate(records), str(cfg.distortion), str(cfg.editability))
    except KeyError as err:
        raise OptionError(f"{err.args[0]} (docs/evaluation.md).") from None
    if not str(cfg.input).startswith("wandb:"):
        mark_sweep_fronts(entries, Path(str(cfg.input)))
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
    if cfg.output:
        out = Path(cfg.output)
        out.mkdir(parents=True, exist_ok=True)
        text = report.markdown(entries, cfg.distortion, cfg.editability)
        (out / "leaderboard.md").write_text(text)
        report.write_csv(entries, cfg.distortion, cfg.editability, out / "leaderboard.csv")
        png = report.plot(entries, cfg.distortion, cfg.editability, out / "tradeoff.png")
        (out / "leaderboard.html").write_text(report.html_page(entries, cfg.distortion, cfg.editability, png,
                                                               str(cfg.title)))
        print(f"wrote {out}/leaderboard.md, leaderboard.csv, tradeoff.png, leaderboard.html")
    if cfg.wandb.mode != "disabled":
        log_to_wandb(cfg, entries)
    return entries


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


def log_to_wandb(cfg, entries: list) -> None:
    """The board as a W&B run of job type `leaderboard`: its full table (as the CSV) and the trade-off plot."""
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
    run.finish()
    print(f"logged the leaderboard to W&B run {run.id} ({w.mode})")
