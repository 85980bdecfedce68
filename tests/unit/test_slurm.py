"""SLURM without a cluster: the sbatch script that `hydra/launcher=slurm` would submit (through the plugin's own
launch path, with only the final `sbatch` call replaced), the trainer/launcher check, and the run folder of a job."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ganinv.configs import CONF, default_run_dir, job_dirname
from ganinv.jobs import check_launcher
from ganinv.methods import ConfigError

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
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)
    try:
        assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy) == (4, 2, "ddp")
        check_launcher(cfg.trainer, cfg.hydra.launcher)  # agrees
    finally:
        HydraConfig.instance().cfg = None
    with pytest.raises(ConfigError, match=r"trainer.devices=8 but hydra.launcher.tasks_per_node=4"):
        check_launcher({"devices": 8, "num_nodes": 2}, cfg.hydra.launcher)
    with pytest.raises(ConfigError, match=r"trainer.num_nodes=1 but hydra.launcher.nodes=2"):
        check_launcher({"devices": 4, "num_nodes": 1}, cfg.hydra.launcher)


def test_run_folders_come_from_the_job(monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert default_run_dir("psp", "2026-01-01_00-00-00") == "runs/psp/slurm-4242"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert default_run_dir("psp", "2026-01-01_00-00-00") == "runs/psp/slurm-77_3"
    long = ",".join(f"loss.weight_{i}={i}" for i in range(40))  # 600 characters
    name = job_dirname(long)
    assert len(name.encode()) <= 255 and name == job_dirname(long) and name != job_dirname(long + "1")
    assert job_dirname("seed=1") == "seed=1"


def test_a_launcher_without_its_extra_names_the_extra(monkeypatch):
    import importlib.util

    from ganinv.cli import OptionError, check_plugins

    check_plugins({"hydra/launcher": "slurm", "hydra/sweeper": "optuna"})  # installed here (the dev extra)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OptionError, match=r"hydra/launcher=slurm needs .* pip install 'ganinv\[slurm\]'"):
        check_plugins({"hydra/launcher": "slurm"})
    with pytest.raises(OptionError, match=r"pip install 'ganinv\[sweeps\]'"):
        check_plugins({"hydra/sweeper": "optuna"})
