"""What a training job under a Hydra launcher or sweeper needs: the launcher check, the run folder of a SLURM job,
the hand-over to submitit's requeue (conf/hydra/launcher/slurm.yaml) and the sweeper's direction."""

from __future__ import annotations

import os
import signal
from typing import Any


def check_launcher(trainer: Any, launcher: Any) -> None:
    """One error naming both keys when a job's trainer disagrees with its submitit launcher on processes per node
    or nodes (Lightning would otherwise wait for processes that never come, or use the wrong number of GPUs)."""
    from ganinv.methods import ConfigError

    if launcher is None or "tasks_per_node" not in launcher:
        return
    pairs = (("devices", "tasks_per_node"), ("num_nodes", "nodes"))
    for ours, theirs in pairs:
        a, b = trainer.get(ours, 1), launcher.get(theirs, 1)
        if str(a) != str(b):
            raise ConfigError(f"trainer.{ours}={a} but hydra.launcher.{theirs}={b}: one training process runs per "
                              f"SLURM task, so they must agree. Use trainer=slurm (it reads both from the launcher) "
                              f"or set trainer.{ours}={b}.")


def job_launcher() -> Any:
    """The launcher config of this Hydra job (None outside Hydra); refuses trainer=slurm without a submitit
    launcher, whose tasks and nodes it reads."""
    from hydra.core.hydra_config import HydraConfig

    from ganinv.methods import ConfigError

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.runtime.choices.get("trainer") == "slurm" and "tasks_per_node" not in hydra.launcher:
        raise ConfigError("trainer=slurm reads its devices and nodes from the SLURM launcher: run ganinv-train -m "
                          "hydra/launcher=slurm trainer=slurm ... (docs/scaling.md), or choose trainer=ddp.")
    return hydra.launcher


def slurm_job() -> str | None:
    """This SLURM job's id, `<array job>_<task>` in an array (kept by a requeue), else None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def requeue(stopped: signal.Signals | None) -> None:
    """After a training stopped by submitit's preemption signal and saved: submitit's handler requeues the job and
    exits (rank 0; other ranks return, and the requeue ends them). Nothing outside a submitit job."""
    if stopped is None:
        return
    handler = signal.getsignal(stopped)
    owner = getattr(handler, "__self__", None)
    if type(owner).__module__.startswith("submitit."):
        handler(int(stopped), None)


def check_direction(objective: str) -> None:
    """Under a sweeper that optimises what `ganinv-train` returns (Optuna), its direction fits the objective."""
    from hydra.core.hydra_config import HydraConfig

    from ganinv.callbacks.metrics import summary_of
    from ganinv.methods import ConfigError

    direction = HydraConfig.get().sweeper.get("direction") if HydraConfig.initialized() else None
    want = {"min": "minimize", "max": "maximize"}[summary_of(objective)]
    if isinstance(direction, str) and direction != want:
        raise ConfigError(f"hydra.sweeper.direction={direction} but objective={objective} is better "
                          f"{'higher' if want == 'maximize' else 'lower'}: set hydra.sweeper.direction={want}.")
