"""What a training job under a Hydra launcher or sweeper needs: the checks that can be made before it is submitted
(`job_problems`: metric names, the trainer / launcher / accelerator pair, the sweeper's direction, paths that must
exist), the run folder of a SLURM job and the hand-over to submitit's requeue (conf/hydra/launcher/slurm.yaml)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

# Config keys naming a file or folder that must exist before a training starts (when set).
PATHS = ("data.images.root", "data.images.train_root", "data.images.test_root", "data.images.maps_root",
         "data.images.test_maps_root", "generator.path", "method.base", "editability.directions")
METRIC_OPTIONS = ("callbacks.metrics.distortion", "callbacks.metrics.editability")  # beside `objective`


def job_problems(cfg: Any, hydra: Any = None) -> list[str]:
    """Everything wrong with a composed training config that can be known without running it, one line each:
    required options left unset, metric names, the trainer against the launcher (`hydra`: the job's Hydra config;
    a composed config's `hydra` node by default) and this machine's GPUs where the launcher runs jobs here, the
    sweeper's direction against the objective, and paths that do not exist."""
    from omegaconf import OmegaConf

    from ganinv.metrics.names import objectives, unknown_metric

    hydra = cfg.get("hydra") if hydra is None else hydra
    problems = [f"{key}= is required (the config leaves it ???): set {key}=..." for key in unset(cfg)]
    goals = objectives(cfg.objective)
    problems += [f"objective={name}: {why}" for name in goals if (why := unknown_metric(name))]
    others = {key: OmegaConf.select(cfg, key) for key in METRIC_OPTIONS}
    problems += [f"{key}={name}: {why}" for key, name in others.items()
                 if name is not None and str(name) not in goals and (why := unknown_metric(str(name)))]
    if hydra is not None:
        problems += metrics_problems(hydra)
        problems += launcher_problems(resolved_trainer(cfg, hydra), hydra)
        if not any(unknown_metric(name) for name in goals):
            problems += direction_problems(goals, hydra.get("sweeper"))
        problems += optuna_problems(goals, hydra)
    problems += [f"{key}={value}: no such file or folder (relative paths start at {Path.cwd()})."
                 for key, value in missing_paths(cfg)]
    return problems


def metrics_problems(hydra: Any) -> list[str]:
    """The toy domain's metrics (its nets, at 64 px) asked of another generator's images."""
    from omegaconf import OmegaConf

    choices = OmegaConf.select(hydra, "runtime.choices") or {}
    generator, metrics = choices.get("generator"), choices.get("metrics")
    if metrics == "toy" and generator not in (None, "toy"):
        return [f"metrics=toy scores with the toy domain's nets, but generator={generator} makes other images: set "
                "metrics=faces (or faces_papers) for faces"]
    return []


def unset(node: Any, prefix: str = "") -> list[str]:
    """The keys under `node` (Hydra's own aside) whose value is missing (`???`), without resolving anything."""
    from omegaconf import DictConfig, OmegaConf

    out = []
    for key in node.keys() if isinstance(node, DictConfig) else ():
        full = f"{prefix}{key}"
        if full == "hydra":
            continue
        if OmegaConf.is_missing(node, key):
            out.append(full)
        else:
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not child._is_interpolation():
                out += unset(child, full + ".")
    return out


def resolved_trainer(cfg: Any, hydra: Any) -> dict:
    """`cfg.trainer` resolved, its `${hydra:...}` values (trainer=slurm reads the launcher) from `hydra`."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if hydra.runtime.choices.get("trainer") == "slurm" and "tasks_per_node" not in hydra.launcher:
        return OmegaConf.to_container(cfg.trainer, resolve=False)  # refused by launcher_problems
    held = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(OmegaConf.create({"hydra": hydra}))
    try:
        return OmegaConf.to_container(cfg.trainer, resolve=True)
    finally:
        HydraConfig.instance().cfg = held


def launcher_problems(trainer: dict, hydra: Any) -> list[str]:
    """trainer=slurm without the SLURM launcher; a trainer that disagrees with its submitit launcher on processes
    per node or nodes (Lightning would wait for processes that never come, or use the wrong number of GPUs); GPUs
    asked for where the launcher runs jobs on this machine and it has fewer."""
    import torch

    launcher, choice = hydra.launcher, hydra.runtime.choices.get("trainer")
    if choice == "slurm" and "tasks_per_node" not in launcher:
        return ["trainer=slurm reads its devices and nodes from the SLURM launcher: run ganinv-train -m "
                "hydra/launcher=slurm trainer=slurm ... (docs/scaling.md), or choose trainer=ddp."]
    problems = []
    if "tasks_per_node" in launcher:
        for ours, theirs in (("devices", "tasks_per_node"), ("num_nodes", "nodes")):
            a, b = trainer.get(ours, 1), launcher.get(theirs, 1)
            if str(a) != str(b):
                problems.append(f"trainer.{ours}={a} but hydra.launcher.{theirs}={b}: one training process runs "
                                f"per SLURM task, so they must agree. Use trainer=slurm (it reads both from the "
                                f"launcher) or set trainer.{ours}={b}.")
    here = "SlurmLauncher" not in str(launcher.get("_target_", ""))  # basic, joblib, submitit's local executor
    accelerator, devices = str(trainer.get("accelerator", "auto")), trainer.get("devices", 1)
    gpus = torch.cuda.device_count()
    if here and accelerator in ("gpu", "cuda") and (devices == "auto" and not gpus or isinstance(devices, int)
                                                     and devices > gpus):
        launcher_name = hydra.runtime.choices.get("hydra/launcher") or "basic"
        problems.append(f"trainer.accelerator={accelerator} with trainer.devices={devices}, but "
                        f"hydra/launcher={launcher_name} runs the jobs on this machine, which has {gpus} GPU(s): "
                        "add trainer.accelerator=cpu (CPU processes), or submit with hydra/launcher=slurm.")
    return problems


def direction_problems(goals: list[str], sweeper: Any) -> list[str]:
    """Under a sweeper that optimises what `ganinv-train` returns (Optuna), its direction(s) fit the objective(s)
    (`ganinv.sweeps.study.directions`)."""
    from ganinv.errors import ConfigError
    from ganinv.sweeps.study import directions

    try:
        directions(goals, sweeper.get("direction") if sweeper is not None else None)
    except ConfigError as e:
        return [str(e)]
    return []


def optuna_problems(goals: list[str], hydra: Any) -> list[str]:
    """Under `hydra/sweeper=optuna`: a pruner with several objectives, a storage that cannot be opened."""
    from omegaconf import OmegaConf

    if (OmegaConf.select(hydra, "runtime.choices") or {}).get("hydra/sweeper") != "optuna":
        return []
    from ganinv.sweeps.study import storage_problem

    sweeper, problems = hydra.sweeper, []
    if sweeper.get("pruner") and len(goals) > 1:
        problems.append(f"hydra/sweeper/pruner: Optuna cannot prune a multi-objective study (objective={goals}): "
                        "set hydra/sweeper/pruner=none, or one objective.")
    if why := storage_problem(sweeper.get("storage"), Path(str(hydra.sweep.dir))):
        problems.append(why)
    return problems


def missing_paths(cfg: Any) -> list[tuple[str, str]]:
    """(key, value) of each set `PATHS` key, and of `resume` when it is a path, that names nothing on disk."""
    from omegaconf import OmegaConf

    keys = [k for k in PATHS if not k.startswith("data.images.") or cfg.data.get("source") == "images"]
    values = [(k, OmegaConf.select(cfg, k, default=None, throw_on_missing=False)) for k in keys]
    if str(cfg.get("resume")) not in ("auto", "last", "never", "None"):
        values.append(("resume", cfg.resume))
    return [(k, str(v)) for k, v in values
            if isinstance(v, str) and v and v != "???" and not Path(v).expanduser().exists()]


def requeue(stopped: signal.Signals | None) -> None:
    """After a training stopped by submitit's preemption signal and saved: submitit's handler requeues the job and
    exits (rank 0; other ranks return, and the requeue ends them). Nothing outside a submitit job."""
    if stopped is None:
        return
    handler = signal.getsignal(stopped)
    owner = getattr(handler, "__self__", None)
    if type(owner).__module__.startswith("submitit."):
        handler(int(stopped), None)
