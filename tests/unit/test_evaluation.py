"""Evaluation end to end: the metrics callback's keys in an offline W&B run (read back from its files) and its
local record, `ganinv-eval` records for our and for an official checkpoint, the leaderboard's ranking, Pareto flags
and files, skipped malformed records, and `ganinv-edit` grids."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv.metrics.records import make_record, read_records, write_record
from tests.commands import composed, in_process
from tests.fixtures import examples
from tests.runs import THREADS
from tests.wandb_files import wandb_offline_run, wandb_written


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """toy pSp for 4 iterations, validated (and evaluated by the callback) at 2 and 4, logged to offline W&B."""
    from ganinv.workflows.training import train

    run = tmp_path_factory.mktemp("psp_run")
    cfg = composed("train", "experiment=toy_psp", "trainer.max_steps=4", "trainer.val_check_interval=2",
                   f"run_dir={run}", "logger=wandb", "logger.mode=offline", "data.batch_size=4", "data.toy.n_val=8",
                   "callbacks.metrics.n_images=8", "editability.lec_images=4", "callbacks.images.n_images=4",
                   "editability.p_norm_samples=2000", "method.encoder.widths=[8,8,12,16]",
                   "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", THREADS)
    trained = train(cfg)
    wandb_written()
    record = json.loads((run / "record.json").read_text())
    assert trained.run == run and trained.record["metrics"] == record["metrics"]  # what a sweeper is returned
    assert trained.metric("mse") == record["metrics"]["mse"] and trained.metric("no such metric") is None
    return run


def test_the_metrics_callback_logs_to_wandb_and_to_a_local_record(toy_run):
    rows = [json.loads(line) for line in (toy_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [2, 4]
    expected = {"mse", "psnr", "ssim", "perceptual", "id_sim", "lec", "lec_smile", "p_norm", "w_layer_spread", "snd",
                "edit_gain", "edit_others", "edit_id", "fid_rec", "kid_rec", "fid_edit", "fid_attr",
                "fid_attr_smile_add"}
    assert expected <= set(rows[0])
    assert json.loads((toy_run / "record.json").read_text())["iteration"] == 4
    assert (toy_run / "images" / "iteration_000004.png").is_file()
    [log] = list((toy_run / "wandb").rglob("run-*.wandb"))
    wb = wandb_offline_run(log)
    logged = {k for row in wb["history"] for k in row}
    assert {f"eval/{k}" for k in expected} <= logged  # the evaluation protocol, on the fixed subset
    assert {"val/mse", "val/perceptual", "val/id_sim"} <= logged  # the validation loop, on the whole split
    for key in ("val/mse", "eval/mse", "eval/reconstructions"):  # one value per name and iteration, in one row
        steps = [(row["_step"], row["trainer/global_step"]) for row in wb["history"] if key in row]
        assert steps == [(2, 2), (4, 4)], (key, steps)
    media = {k: v for row in wb["history"] for k, v in row.items() if isinstance(v, dict)}
    assert media["eval/samples"]["_type"] == "table-file" and media["eval/samples"]["nrows"] == 8
    assert media["eval/tradeoff_table"]["_type"] == "table-file"  # the scatter's data
    assert media["eval/reconstructions"]["_type"] == "images/separated"
    table = json.loads((log.parent / "files" / media["eval/samples"]["path"]).read_text())
    assert table["columns"] == ["target", "reconstruction", "+3 smile", "+3 age", "+3 yaw", "+3 eyes_open"]
    assert wb["summary"]["ganinv_record"]["metrics"]["lec"] == pytest.approx(rows[-1]["lec"])
    assert wb["config"]["config"]["method"]["_target_"] == "ganinv.methods.PSPModule"  # the resolved Hydra config


def test_a_training_run_is_one_record_on_the_leaderboard(toy_run, tmp_path):
    from ganinv.workflows.leaderboard import leaderboard

    entries = leaderboard(composed("leaderboard", f"input={toy_run}", f"output={tmp_path}", "show=[]"))
    assert [e.n for e in entries] == [1]  # record.json, not again the same record in the W&B run's files


def test_eval_of_a_runs_checkpoint_alone_reproduces_the_runs_own_record(toy_run, tmp_path, monkeypatch, capsys):
    """`ganinv-eval checkpoint=<a run's last.ckpt>` and nothing else evaluates the run's held-out images under the
    run's protocol (its data, metrics, editability, n_images): the same metrics as its last evaluation."""
    out = tmp_path / "psp.json"
    done = in_process("eval", f"checkpoint={toy_run}/checkpoints/last.ckpt", f"output={out}", "wandb.mode=offline",
                      monkeypatch=monkeypatch, capsys=capsys)
    assert done.returncode == 0, done.stderr[-3000:]
    rec, run = json.loads(out.read_text()), json.loads((toy_run / "record.json").read_text())
    assert rec["method"] == "PSPModule" and len(rec["generator"]["hash"]) == 64 and rec["data"]["n_images"] == 8
    assert {"mse", "psnr", "psnr_dataset", "ssim", "perceptual", "id_sim", "lec", "p_norm", "edit_gain", "fid_rec",
            "kid_edit"} <= set(rec["metrics"])
    assert run["last"]["iteration"] == rec["iteration"] == 4
    assert set(rec["metrics"]) == set(run["last"]["metrics"])
    for key, value in run["last"]["metrics"].items():
        assert rec["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert rec["protocol"] == run["protocol"]
    assert {"mse", "psnr", "psnr_dataset", "snd"} <= set(rec["protocol"]) and rec["timing"]["images_per_second"] > 0
    assert rec["config"]["checkpoint"].endswith("last.ckpt") and len(rec["config_hash"]) == 16
    wandb_written()
    found = read_records(tmp_path)  # the JSON file, not again the offline W&B run beside it
    assert [r["metrics"]["mse"] for r in found] == [rec["metrics"]["mse"]]
    assert list(tmp_path.rglob("run-*.wandb"))


def test_eval_options_on_the_command_line_replace_the_runs(toy_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "psp.json"
    done = in_process("eval", f"checkpoint={toy_run}/checkpoints/last.ckpt", f"output={out}", "n_images=6",
                      "editability.alpha=2", "fid=none", monkeypatch=monkeypatch, capsys=capsys)
    assert done.returncode == 0, done.stderr[-3000:]
    rec = json.loads(out.read_text())
    assert rec["data"]["n_images"] == 6 and "fid_rec" not in rec["metrics"]
    assert rec["protocol"]["editability"].startswith("alpha 2.0")
    assert rec["config"]["editability"]["p_norm_samples"] == 2000  # the run's, where the command line is silent


def test_eval_writes_a_record_for_an_official_checkpoint_on_generator_samples(tmp_path):
    from ganinv.workflows.evaluation import evaluate

    path = examples.official_checkpoints(tmp_path / "official")["e4e"]
    out = tmp_path / "e4e.json"
    evaluate(composed("eval", f"checkpoint={path}", f"output={out}", "data=generated", "n_images=4", "fid=none",
                      "editability.p_norm_samples=1000", "data.input_size=32", "data.target_size=32",
                      "metrics.image_size=32"))
    rec = json.loads(out.read_text())
    assert rec["method"] == "E4EModule" and rec["data"]["source"] == "generated"
    assert {"mse", "psnr", "ssim", "code_mse", "p_norm", "w_layer_spread"} <= set(rec["metrics"])
    assert "lec" not in rec["metrics"]  # no directions for a generator other than the toy one


def synthetic(folder: Path) -> None:
    for name, mse, lec, seeds in (("A", 0.01, 10.0, 2), ("B", 0.02, 5.0, 1), ("C", 0.03, 6.0, 1)):
        for s in range(seeds):
            write_record(make_record(name, name, {"mse": mse + 0.001 * s, "lec": lec, "psnr": 30 - 100 * mse,
                                                        "fid_attr": lec / 4}),
                         folder / f"{name}_{s}.json")


def test_leaderboard_ranks_flags_the_pareto_front_and_writes_its_files(tmp_path, capsys):
    from ganinv.workflows.leaderboard import leaderboard

    synthetic(tmp_path / "records")
    (tmp_path / "records" / "broken.json").write_text("{not json")
    (tmp_path / "records" / "partial.json").write_text(json.dumps({"ganinv_record": 1, "name": "D"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = leaderboard(composed("leaderboard", f"input={tmp_path / 'records'}", f"output={tmp_path / 'out'}"))
    said = " ".join(str(w.message) for w in caught)
    assert "broken.json: unreadable record" in said and "partial.json: record without method, metrics" in said
    assert [e.name for e in entries] == ["A", "B", "C"] and [e.pareto for e in entries] == [True, True, False]
    assert entries[0].n == 2 and entries[0].std["mse"] == pytest.approx(0.000707, rel=1e-2)
    rows = list(csv.DictReader((tmp_path / "out" / "leaderboard.csv").open()))
    assert [r["pareto"] for r in rows] == ["1", "1", "0"]
    table = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| 1 | A | 2 |" in table and "| psnr | fid_attr |" in table  # the attribute editing FID is shown
    assert Image.open(tmp_path / "out" / "tradeoff.png").size[0] > 400
    page = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "data:image/png;base64," in page and "src=\"http" not in page  # self-contained
    capsys.readouterr()
    psnr = leaderboard(composed("leaderboard", f"input={tmp_path / 'records'}", "distortion=psnr", "show=[]"))
    assert [e.name for e in psnr] == ["A", "B", "C"]  # higher PSNR is better
    printed = capsys.readouterr().out
    assert "psnr" in printed and "lec" in printed and "mse" not in printed  # only the axes with show=[]


def test_leaderboard_names_a_missing_metric(tmp_path):
    from ganinv.workflows.command_line import OptionError
    from ganinv.workflows.leaderboard import leaderboard

    synthetic(tmp_path)
    with pytest.raises(OptionError, match=r"editability=fid_rec: no record has this metric; did you mean "
                                          r"editability=fid_attr\? they have: fid_attr, lec, mse"):
        leaderboard(composed("leaderboard", f"input={tmp_path}", "editability=fid_rec"))
    with pytest.raises(OptionError, match="distortion=msee: no record has this metric; did you mean distortion=mse"):
        leaderboard(composed("leaderboard", f"input={tmp_path}", "distortion=msee"))


def test_edit_writes_a_grid_and_an_interpolation(toy_run, renders, tmp_path):
    from ganinv.workflows.editing import edit_grid

    ckpt = toy_run / "checkpoints" / "last.ckpt"
    grid, said = edit_grid(composed("edit", f"checkpoint={ckpt}", f"input={renders}", f"output={tmp_path / 'g.png'}",
                                    "edits=[smile,age]", "strengths=[-3,0,3]", "max_images=2"))
    assert said == f"wrote {grid}: 2 images x smile, age; columns: input, reconstruction, strengths [-3, 0, 3]"
    ink = np.asarray(Image.open(grid).convert("L")) < 128
    left = ink.shape[1] - 5 * 130  # 64-px tiles shown at 128 px: input, reconstruction, 3 strengths
    assert ink.shape[0] == 22 + 4 * 130 and left > 40  # 2 images x 2 edits rows, under a band of column labels
    assert all(ink[:22, left + j * 130 : left + j * 130 + 128].any() for j in range(5))  # each column is labelled
    assert all(ink[22 + i * 130 : 22 + i * 130 + 128, :left].any() for i in range(4))  # and each row
    faces = sorted(renders.glob("*.png"))
    row, _ = edit_grid(composed("edit", f"checkpoint={ckpt}", f"interpolate=[{faces[0]},{faces[1]}]", "steps=5",
                                f"output={tmp_path / 'i.png'}"))
    img = np.asarray(Image.open(row).convert("L"))
    assert img.shape[0] == 22 + 130 and (img.shape[1] - 7 * 130) > 40 and img.std() > 1  # not blank


def test_metric_and_logger_configs_instantiate(tmp_path, monkeypatch):
    from hydra.utils import instantiate
    from pytorch_lightning.loggers import WandbLogger

    from ganinv.checkpoints import CheckpointError
    from ganinv.loggers.wandb import wandb_mode
    from ganinv.metrics import DistortionMetrics

    toy = instantiate(composed("eval", "output=r.json").metrics)
    assert isinstance(toy, DistortionMetrics) and set(toy.metrics) == {"mse", "psnr", "ssim", "perceptual", "id_sim"}
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(Exception) as err:  # no LPIPS trunk here: one error naming the file and where it goes
        instantiate(composed("eval", "output=r.json", "metrics=faces", f"weights_dir={tmp_path}").metrics)
    cause = err.value if isinstance(err.value, CheckpointError) else err.value.__cause__
    assert isinstance(cause, CheckpointError) and "alexnet" in str(cause)
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online" and wandb_mode("offline") == "offline"
    logger = instantiate(composed("train", f"run_dir={tmp_path}", "logger=wandb", "logger.mode=offline").logger)
    assert isinstance(logger, WandbLogger) and logger._offline and (tmp_path / "wandb" / "run-id").is_file()
    csv_logger = instantiate(composed("train", f"run_dir={tmp_path}", "logger=csv").logger)
    assert type(csv_logger).__name__ == "CSVLogger"


class Killed(Exception):
    pass


def killed_after(calls: int, monkeypatch, cls) -> list[int]:
    """`cls.invert` raises `Killed` once it has inverted `calls` batches; the list counts the batches inverted."""
    original, count = cls.invert, []

    def invert(self, images):
        if len(count) == calls:
            raise Killed
        count.append(len(images))
        return original(self, images)

    monkeypatch.setattr(cls, "invert", invert)
    return count


def test_eval_and_invert_killed_midway_redo_only_the_unfinished_batches(renders, tmp_path, monkeypatch):
    from ganinv.methods import AverageCode as OptimizationModule  # the optimiser's start: one call per batch
    from ganinv.workflows.evaluation import evaluate
    from ganinv.workflows.inverter import invert_folder

    overrides = ("refine=optim_w", "refine.steps=3", "batch_size=2")
    ev = ("n_images=6", "editability.lec_images=0", "editability.p_norm_samples=500", "fid=none")
    whole = evaluate(composed("eval", *overrides, *ev, f"output={tmp_path}/whole.json"))
    invert_folder(composed("invert", *overrides, f"input={renders}", f"output={tmp_path}/whole"))
    killed_after(2, monkeypatch, OptimizationModule)  # 6 images in batches of 2: killed in the third
    with pytest.raises(Killed):
        evaluate(composed("eval", *overrides, *ev, f"output={tmp_path}/again.json"))
    monkeypatch.undo()
    count = killed_after(99, monkeypatch, OptimizationModule)
    again = evaluate(composed("eval", *overrides, *ev, f"output={tmp_path}/again.json"))
    assert count == [2], "finished batches were inverted again"
    assert json.loads(again.read_text())["metrics"] == json.loads(whole.read_text())["metrics"]
    monkeypatch.undo()
    killed_after(1, monkeypatch, OptimizationModule)  # 3 images in batches of 2: killed in the second
    with pytest.raises(Killed):
        invert_folder(composed("invert", *overrides, f"input={renders}", f"output={tmp_path}/again"))
    monkeypatch.undo()
    count = killed_after(99, monkeypatch, OptimizationModule)
    out = invert_folder(composed("invert", *overrides, f"input={renders}", f"output={tmp_path}/again"))[0]
    assert count == [1]
    codes, reference = (torch.load(p / "codes.pt", weights_only=True) for p in (out, tmp_path / "whole"))
    assert codes.keys() == reference.keys() and all(torch.equal(codes[k], reference[k]) for k in codes)
    assert not (out / ".partial").exists() and not (tmp_path / "again.json.partial").exists()


def test_the_board_counts_seeds_ties_rows_within_their_spread_and_shows_the_digits_that_rank(tmp_path, capsys):
    """Two runs of one seed (1 and 2 processes) are one seed; rows whose difference is inside their seeds' spread
    share a rank and neither pushes the other off the front; the digits shown tell ranked values apart."""
    from ganinv.workflows.leaderboard import leaderboard

    def record(name, seed, mse, lec, weights):
        write_record(make_record(name, name, {"mse": mse, "lec": lec}, group=name, seed=seed, weights=weights),
                     tmp_path / "records" / f"{name}_{weights}.json")

    for seed, (mse, lec) in enumerate([(0.050, 10.0), (0.090, 11.0), (0.070, 12.0)]):  # pSp: std over 3 seeds
        record("pSp", seed, mse, lec, f"p{seed}")
    for seed, (mse, lec) in enumerate([(0.051, 8.0), (0.087, 8.2), (0.070, 8.4)]):  # e4e: MSE within pSp's
        record("e4e", seed, mse, lec, f"e{seed}")
    record("e4e", 2, 0.072, 8.4, "e2-ddp")  # seed 2 again, on 2 processes: not a third seed
    record("W+ opt", 0, 0.02012341, 30.0, "o0")  # single runs, 1.5e-7 apart: ranked, and shown, apart
    record("W opt", 0, 0.02012356, 20.0, "w0")
    record("worse", 0, 0.2, 40.0, "b0")  # beaten on both axes by every other row
    entries = leaderboard(composed("leaderboard", f"input={tmp_path / 'records'}", f"output={tmp_path / 'out'}"))
    rows = {e.name: e for e in entries}
    e4e, psp = rows["e4e"], rows["pSp"]
    assert (e4e.n, e4e.seeds, e4e.evaluations) == (4, 3, 4) and (psp.n, psp.seeds) == (3, 3)
    seed_means = [0.051, 0.087, (0.070 + 0.072) / 2]  # a seed's runs averaged first
    assert e4e.mean["mse"] == pytest.approx(sum(seed_means) / 3)
    assert e4e.std["mse"] == pytest.approx(float(np.std(seed_means, ddof=1)))
    assert e4e.rank == psp.rank == 3 and e4e.pareto and psp.pareto  # tied on MSE: both on the front
    assert (rows["W+ opt"].rank, rows["W opt"].rank, rows["worse"].rank) == (1, 2, 5)
    assert rows["W opt"].pareto and not rows["worse"].pareto
    printed = capsys.readouterr().out
    assert f"{0.02012341:.4g}" == f"{0.02012356:.4g}"  # 4 digits would not tell them apart: 5 do
    assert "0.020123 " in printed and "0.020124 " in printed and "4 (3 seeds)" in printed and "=3" in printed
    csv_rows = {r["name"]: r for r in csv.DictReader((tmp_path / "out" / "leaderboard.csv").open())}
    assert (csv_rows["e4e"]["seeds"], csv_rows["e4e"]["evaluations"], csv_rows["e4e"]["rank"]) == ("3", "4", "3")


def test_the_terminal_table_fits_the_terminal_with_whole_names(tmp_path, capsys, monkeypatch):
    from ganinv.workflows.leaderboard import leaderboard

    name = "ReStyle-e4e (ResNet34) + In-Domain optimiser without regulariser (steps 500)"
    metrics = {k: 0.5 for k in ("mse", "lec", "psnr", "perceptual", "id_sim", "p_norm", "edit_gain")}
    write_record(make_record(name, "X", metrics), tmp_path / "r.json")
    monkeypatch.setenv("COLUMNS", "120")
    leaderboard(composed("leaderboard", f"input={tmp_path}"))
    printed = capsys.readouterr().out
    assert name in printed and max(len(line) for line in printed.splitlines() if "│" in line) <= 120
    assert "more column(s) for a wider terminal" in printed


def test_validation_inverts_each_image_once(tmp_path, monkeypatch):
    """The callbacks evaluate the validation loop's own inversions of their images: no second inversion of the
    subset (`ValidationSubset` would fall back to one only where the loop stopped short)."""
    import ganinv.callbacks.periodic as periodic
    from ganinv.workflows.training import train

    def again(*args, **kwargs):
        raise AssertionError("the validation subset was inverted a second time")

    monkeypatch.setattr(periodic, "invert_images", again)
    train(composed("train", "experiment=toy_psp", "trainer.max_steps=2", "trainer.val_check_interval=2",
                   f"run_dir={tmp_path}", "logger=none", "data.batch_size=4", "data.toy.n_val=8",
                   "callbacks.metrics.n_images=6", "callbacks.images.n_images=3", "editability.lec_images=2",
                   "editability.p_norm_samples=500", "fid=none", "method.encoder.widths=[8,8,12,16]",
                   "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", THREADS))
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["iteration"] == 2 and {"mse", "lec", "p_norm"} <= set(row)
    assert (tmp_path / "images" / "iteration_000002.png").is_file()
