"""SLURM without a cluster: the sbatch script that `hydra/launcher=slurm` would submit (through the plugin's own
launch path, with only the final `sbatch` call replaced), the trainer/launcher check, and the run folder of a job."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ganinv.configs import CONF, default_run_dir, folder_name, job_dirname
from ganinv.workflows.checks import launcher_problems, resolved_trainer

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the extra ganinv[slurm]")


class Submitted(Exception):
    pass


def sbatch_script(tmp_path, monkeypatch, *overrides: str) -> str:
    """The sbatch script a 3-job multirun would submit."""
    from submitit.slurm.slurm import SlurmExecutor

    def capture(self, command):
        raise Submitted(self._make_submission_file_text(command, "uid"))

    monkeypatch.setattr(SlurmExecutor, "_submit_command", capture)
    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # no srun on this machine
    with initialize_config_dir(CONF, version_base=None):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=slurm", f"hydra.sweep.dir={tmp_path}",
                                          *overrides], return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(Submitted) as got:
        launcher.launch([["seed=0"], ["seed=1"], ["seed=2"]], 0)
    return str(got.value)


def test_two_nodes_of_eight_gpus(tmp_path, monkeypatch):
    text = sbatch_script(tmp_path, monkeypatch, "hydra.launcher.nodes=2", "hydra.launcher.tasks_per_node=8",
                         "hydra.launcher.partition=gpu", "hydra.launcher.account=vision",
                         "hydra.launcher.timeout_min=720")
    lines = set(text.splitlines())
    for flag in ("--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8", "--cpus-per-task=8", "--time=720",
                 "--signal=USR2@120", "--requeue", "--partition=gpu", "--account=vision", "--open-mode=append",
                 "--array=0-2%3"):
        assert f"#SBATCH {flag}" in lines, (flag, text)
    assert "srun" in text and "submitit.core._submit" in text


def test_the_trainer_follows_the_launcher(tmp_path):
    with initialize_config_dir(CONF, version_base=None):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=slurm", "hydra.launcher.nodes=2",
                                          "hydra.launcher.tasks_per_node=4"], return_hydra_config=True)
    trainer = resolved_trainer(cfg, cfg.hydra)
    assert (trainer["devices"], trainer["num_nodes"], trainer["strategy"]) == (4, 2, "ddp")
    assert launcher_problems(trainer, cfg.hydra) == []  # agrees
    assert launcher_problems({**trainer, "devices": 8}, cfg.hydra)[0].startswith(
        "trainer.devices=8 but hydra.launcher.tasks_per_node=4")
    assert launcher_problems({**trainer, "num_nodes": 1}, cfg.hydra)[0].startswith(
        "trainer.num_nodes=1 but hydra.launcher.nodes=2")


def test_a_sweep_is_refused_before_any_job_exists(tmp_path, monkeypatch):
    """Everything a compute node would find wrong, found by the submitting command, one line each, before the
    launcher makes anything: a metric typo, a trainer against its launcher, GPUs this machine lacks for a local
    launcher, a missing data folder, a typo in the search space."""
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "ganinv.commands.train", "-m", "hydra/launcher=slurm", "trainer=ddp", "objective=mes",
         "hydra.launcher.tasks_per_node=4", "data=images", f"data.images.root={tmp_path / 'ffhq'}", "seed=0,1,2",
         f"hydra.sweep.dir={sweep}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert all(line.startswith("ganinv-train: error: ") for line in lines), lines
    for expected in ("objective=mes: not a metric of the evaluation; did you mean mse?",
                     "trainer.devices=auto but hydra.launcher.tasks_per_node=4",
                     f"data.images.root={tmp_path / 'ffhq'}: no such file or folder"):
        assert sum(expected in line for line in lines) == 1, (expected, lines)
    assert not sweep.exists()  # nothing submitted, nothing written


@pytest.fixture()
def refused(tmp_path, monkeypatch, capsys):
    """`ganinv-train -m <args>` run in this process: its one-line error (exit 2), with no sweep folder made."""
    from tests.commands import in_process, one_line_error

    sweep = tmp_path / "sweep"

    def run(*args: str) -> str:
        done = in_process("train", "-m", *args, f"hydra.sweep.dir={sweep}", monkeypatch=monkeypatch, capsys=capsys)
        one_line_error(done, "ganinv-train")
        assert not sweep.exists()
        return done.stderr

    return run


@pytest.mark.parametrize("args,expected", [
    (["hydra/launcher=slurm_local", "trainer=slurm", "seed=0,1"],
     "trainer.accelerator=gpu with trainer.devices=1, but hydra/launcher=slurm_local runs the jobs on this machine"),
    (["trainer=slurm", "seed=0,1"], "trainer=slurm reads its devices and nodes from the SLURM launcher"),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "experiment=toy_e4e", "loss.weights.idd=interval(0,1)"],
     "loss.weights.idd is not an option; did you mean loss.weights.id?"),
    (["hydra/sweeper=optuna", "hydra.sweeper.direction=maximize", "loss.weights.l2=interval(0,1)"],
     "hydra.sweeper.direction=maximize but objective=mse is better lower"),
    (["hydra/sweeper=optuna", "objective=[mse,lce]", "loss.weights.l2=interval(0,1)"],
     "objective=lce: not a metric of the evaluation; did you mean lec?"),
    (["hydra/sweeper=optuna", "objective=[mse,lec]", "hydra.sweeper.direction=[minimize,maximize]",
      "loss.weights.l2=interval(0,1)"], "hydra.sweeper.direction=maximize but objective=lec is better lower"),
    (["hydra/sweeper=optuna", "objective=[mse,lec]", "hydra/sweeper/pruner=median", "loss.weights.l2=interval(0,1)"],
     "Optuna cannot prune a multi-objective study"),
    (["hydra/sweeper=optuna", "hydra.sweeper.storage=postgresql://nobody@127.0.0.1:1/none",
      "loss.weights.l2=interval(0,1)"], "hydra.sweeper.storage=postgresql://nobody@127.0.0.1:1/none cannot be opened"),
    (["experiment=toy_psp,toy_e4e", "callbacks.metrics.editability=lce"], "callbacks.metrics.editability=lce"),
    (["experiment=toy_psp,toy_hyperstyle", "seed=0,1"], "method.base= is required"),
    (["generator=ffhq256", f"generator.path={Path(__file__).parents[1] / 'fixtures' / 'rosinality_tiny.pt'}",
      "seed=0,1"], "metrics=toy scores with the toy domain's nets, but generator=ffhq256"),
])
def test_each_problem_of_a_sweep_is_one_line_before_submission(refused, args, expected):
    import torch

    if "trainer.accelerator=gpu" in expected and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert expected in refused(*args)


def test_run_folders_come_from_the_job(monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert default_run_dir("psp", "2026-01-01_00-00-00") == "runs/psp/slurm-4242"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert default_run_dir("psp", "2026-01-01_00-00-00") == "runs/psp/slurm-77_3"
    monkeypatch.setenv("WANDB_RUN_ID", "abc123")  # a W&B agent's trial: its own folder, whatever the job
    assert default_run_dir("psp", "2026-01-01_00-00-00") == "runs/psp/wandb-abc123"


def test_folder_names_are_flat_readable_and_unique():
    assert folder_name(["seed=1", "experiment=toy_e4e"]) == "experiment=toy_e4e,seed=1"
    flat = folder_name(["data.images.train_root=/data/ffhq", "seed=0"])
    assert flat.startswith("data.images.train_root=ffhq,seed=0_") and "/" not in flat
    assert flat != folder_name(["data.images.train_root=/other/ffhq", "seed=0"])  # the hash tells them apart
    assert folder_name(["loss/identity=moco", "method.encoder.widths=[8,8,12,16]"]) == \
        "loss.identity=moco,method.encoder.widths=[8,8,12,16]"
    many = [f"loss.weight_{i}={i}" for i in range(40)]
    name = folder_name(many)
    assert len(name) <= 120 and name == folder_name(list(reversed(many))) and name != folder_name(many[:-1])
    assert all(part in many for part in name.rsplit("_", 1)[0].split(","))  # whole overrides, none cut


def test_a_sweep_job_is_named_after_what_varies(tmp_path, monkeypatch):
    """The docs' SLURM example: only the seed varies, so each job's folder is `seed=<k>`, not its whole (and
    path-valued) command line."""
    from hydra.core.hydra_config import HydraConfig

    from ganinv.workflows.command_line import check_command_line

    for d in ("ffhq", "celeba_hq_test"):
        (tmp_path / d).mkdir()
    argv = ["-m", "method=e4e", "data=images", f"data.images.train_root={tmp_path / 'ffhq'}",
            f"data.images.test_root={tmp_path / 'celeba_hq_test'}", "seed=0,1,2"]
    extra = check_command_line("ganinv-train", "train", argv=argv)
    assert extra and extra[0].startswith("hydra.job.config.override_dirname.exclude_keys=[run_dir,resume,threads,")
    job = [a for a in argv[1:] if not a.startswith("seed=")] + ["seed=1"]
    with initialize_config_dir(CONF, version_base=None):
        cfg = compose("train", overrides=job + extra, return_hydra_config=True)
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.hydra.overrides.task = job
    HydraConfig.instance().set_config(cfg)
    try:
        assert job_dirname() == "seed=1"
    finally:
        HydraConfig.instance().cfg = None


def test_a_launcher_without_its_extra_names_the_extra(monkeypatch):
    import importlib.util

    from ganinv.workflows.command_line import OptionError, check_plugins

    check_plugins({"hydra/launcher": "slurm", "hydra/sweeper": "optuna"})  # installed here (the dev extra)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OptionError, match=r"hydra/launcher=slurm needs .* pip install 'ganinv\[slurm\]'"):
        check_plugins({"hydra/launcher": "slurm"})
    with pytest.raises(OptionError, match=r"pip install 'ganinv\[sweeps\]'"):
        check_plugins({"hydra/sweeper": "optuna"})
