"""The leaderboard over time, on records made here (two methods × three training seeds): snapshots with their
provenance, changes against a baseline told apart from seed noise, the regression gate, history, W&B artifact,
and a snapshot of format 1 read by this version."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganinv.metrics.records import make_record, write_record
from ganinv.metrics.snapshots import FILE, Regressions, compare, read
from tests.commands import composed, in_process, one_line_error

FIXTURES = Path(__file__).parents[1] / "fixtures"
SPREAD = {"pSp (W+)": [0.0100, 0.0110, 0.0090], "e4e": [0.0150, 0.0160, 0.0140]}  # mse per seed: std 0.001


def write_board(folder: Path, shift: dict[str, float] | None = None, generator: str = "g" * 16,
                p_norm_samples: int = 10000) -> Path:
    """Records of both methods at three seeds, each method's mse times `shift[name]`."""
    for name, values in SPREAD.items():
        for seed, mse in enumerate(values):
            mse *= (shift or {}).get(name, 1.0)
            record = make_record(name, name.split()[0], {"mse": mse, "lec": 10 * mse + 1}, seed=seed,
                                 group=f"key-{name}", weights=f"{name}-{seed}-{mse}", run=f"runs/{name}/{seed}",
                                 checkpoint=f"runs/{name}/{seed}/best.ckpt",
                                 generator={"hash": generator}, data={"source": "toy", "n_images": 16, "seed": 7},
                                 protocol={"p_norm": f"{p_norm_samples} samples"})
            write_record(record, folder / f"{name}_{seed}.json".replace(" ", "_"))
    return folder


def board(tmp: Path, *options: str):
    from ganinv.workflows.leaderboard import leaderboard

    return leaderboard(composed("leaderboard", f"input={tmp}", "show=[]", *options))


def test_a_snapshot_keeps_the_rows_their_records_and_provenance(tmp_path):
    write_board(tmp_path / "week1")
    board(tmp_path / "week1", f"save={tmp_path / 'snaps'}")
    [path] = list((tmp_path / "snaps").rglob(FILE))
    snap = read(path)
    assert snap["ganinv_snapshot"] == 1 and snap["ganinv_version"] and snap["git_commit"]
    assert snap["axes"] == {"distortion": "mse", "editability": "lec"} and len(snap["records"]) == 6
    row = next(r for r in snap["rows"] if r["name"] == "e4e")
    assert row["seeds"] == 3 and row["mean"]["mse"] == pytest.approx(0.015) and row["std"]["mse"] == pytest.approx(
        0.001)
    p = row["provenance"]
    assert p["generators"] == ["g" * 16] and p["images"] == [16] and len(p["weights"]) == 3 and len(p["data"]) == 1
    assert p["protocol"] == {"p_norm": "10000 samples"} and len(p["config_hashes"]) == 1
    assert (path.parent / "leaderboard.md").is_file() and (path.parent / "leaderboard.csv").is_file()


def test_a_planted_regression_fails_the_gate_and_seed_noise_does_not(tmp_path, capsys, monkeypatch):
    board(write_board(tmp_path / "then"), f"save={tmp_path / 'snaps'}")
    # pSp 5 % worse (inside its seeds' spread of 10 % + 10 %); e4e 30 % worse (beyond it)
    write_board(tmp_path / "noise", {"pSp (W+)": 1.05})
    board(tmp_path / "noise", f"baseline={tmp_path / 'snaps'}", "fail_on='mse:+2%'")
    out = capsys.readouterr().out
    assert "pSp (W+): same: mse +0.0005 (+5.0%) within spread" in out and "no regression" in out
    write_board(tmp_path / "planted", {"pSp (W+)": 1.05, "e4e": 1.3})
    with pytest.raises(Regressions) as err:
        board(tmp_path / "planted", f"baseline={tmp_path / 'snaps'}", "fail_on='mse:+2%,lec:+50%'")
    assert str(err.value).splitlines() == [
        "e4e: mse +30.00% (0.015 -> 0.0195; the seeds' spread ±0.0023) past fail_on mse:+2%"]
    # the command: exit code 1 and the rows on stderr, for a CI job to gate on
    done = in_process("leaderboard", f"input={tmp_path / 'planted'}", f"baseline={tmp_path / 'snaps'}",
                      "fail_on=mse:+2%", monkeypatch=monkeypatch, capsys=capsys)
    assert done.returncode == 1 and "e4e: mse +30.00%" in done.stderr and "pSp" not in done.stderr


def test_one_run_makes_no_claim_and_rows_are_new_dropped_or_reconfigured():
    rows = [{"name": "a", "group": "k1", "seeds": 1, "mean": {"mse": 2.0}, "std": {}},
            {"name": "b", "group": "k9", "seeds": 3, "mean": {"mse": 1.0}, "std": {"mse": 0.0}},
            {"name": "new", "group": "k3", "seeds": 3, "mean": {"mse": 1.0}, "std": {}}]
    base = [{"name": "a", "group": "k1", "seeds": 1, "mean": {"mse": 1.0}, "std": {}},
            {"name": "b", "group": "k2", "seeds": 3, "mean": {"mse": 0.5}, "std": {"mse": 0.0}},
            {"name": "gone", "group": "k4", "seeds": 3, "mean": {"mse": 1.0}, "std": {}}]
    changes = {c.name: c for c in compare(rows, base)}
    assert changes["a"].status == "same" and changes["a"].deltas["mse"][4] == "no claim (one run)"
    assert changes["b"].status == "re-configured" and changes["new"].status == "new"
    assert changes["gone"].status == "dropped"


def test_a_baseline_of_another_generator_or_protocol_says_so(tmp_path, capsys):
    board(write_board(tmp_path / "then"), f"save={tmp_path / 'snaps'}")
    board(write_board(tmp_path / "other", generator="h" * 16), f"baseline={tmp_path / 'snaps'}")
    assert "e4e: not comparable; another generator (hhhhhhhh vs gggggggg)" in capsys.readouterr().out
    board(write_board(tmp_path / "protocol", p_norm_samples=20000), f"baseline={tmp_path / 'snaps'}",
          "fail_on=mse:+0%")  # a protocol that differs is named, and not gated
    assert "protocol differs: p_norm: '10000 samples' then, '20000 samples' now" in capsys.readouterr().out


def test_history_plots_the_rows_over_the_snapshots(tmp_path):
    board(write_board(tmp_path / "w1"), f"save={tmp_path / 'snaps'}")
    (tmp_path / "w1").rename(tmp_path / "w2")
    write_board(tmp_path / "w2", {"e4e": 0.8})
    board(tmp_path / "w2", f"history={tmp_path / 'snaps'}", f"output={tmp_path / 'board'}")
    assert (tmp_path / "board" / "history.png").stat().st_size > 10_000
    assert "<h2>Over time</h2>" in (tmp_path / "board" / "leaderboard.html").read_text()


def test_a_snapshot_of_format_1_is_read_and_compared(tmp_path, capsys):
    old = read(FIXTURES / "snapshot_v1.json")  # written by ganinv 0.1.0; later versions must read it
    assert [r["name"] for r in old["rows"]] == ["pSp (W+)", "e4e"]
    board(write_board(tmp_path / "now"), f"baseline={FIXTURES / 'snapshot_v1.json'}")
    out = capsys.readouterr().out
    assert f"against snapshot {FIXTURES / 'snapshot_v1.json'}:" in out and "e4e: same" in out


def test_the_board_is_a_versioned_wandb_artifact_offline(tmp_path):
    from tests.wandb_files import wandb_offline_run, wandb_written

    board(write_board(tmp_path / "recs"), "wandb.mode=offline", f"wandb.dir={tmp_path / 'w'}")
    wandb_written()
    logged = wandb_offline_run(next((tmp_path / "w").rglob("run-*.wandb")))
    assert logged["job_type"] == "leaderboard" and ("leaderboard", "leaderboard") in logged["artifacts"]


@pytest.mark.parametrize("args,expected", [
    (["fail_on=mse:+2%"], "fail_on=mse:+2% compares against a baseline"),
    (["baseline=nowhere", "fail_on=mse"], "fail_on=mse: 'mse' is not <metric>:+<amount>[%]"),
    (["baseline=nowhere", "fail_on=lce:+2%"], "lce: not a metric of the evaluation; did you mean lec?"),
    (["baseline=nowhere"], "baseline=nowhere: no such snapshot or folder"),
    (["history=nowhere"], "history= draws history.png into output="),
])
def test_bad_options_are_one_line_before_any_work(tmp_path, monkeypatch, capsys, args, expected):
    write_board(tmp_path / "recs")
    done = in_process("leaderboard", f"input={tmp_path / 'recs'}", *args, monkeypatch=monkeypatch, capsys=capsys)
    one_line_error(done, "ganinv-leaderboard", expected)
