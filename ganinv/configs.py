"""Where the Hydra config tree is (`conf/` beside the package in a source checkout, `ganinv/conf/` in a wheel), and
the resolvers of `ganinv-train`'s run folders: `${ganinv_run_dir:<method>,<stamp>}` (the default `run_dir`) and
`${ganinv_job_dirname:}` (a multirun job's folder under the sweep folder)."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
CONF = str(next((p for p in (_PACKAGE / "conf", _PACKAGE.parent / "conf") if (p / "train.yaml").is_file()),
                _PACKAGE.parent / "conf"))


def yaml_defaults(group: str, name: str) -> dict:
    """The options of `conf/<group>/<name>.yaml` as plain data (without `_target_` or `defaults`): where code that
    runs without Hydra (a refiner built in Python, an official file loaded) takes the paper's defaults from, so
    each default is written once."""
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(OmegaConf.load(Path(CONF) / group / f"{name}.yaml"))
    return {k: v for k, v in node.items() if k not in ("_target_", "defaults")}


def compose_config(name: str, overrides: list[str]):
    """`conf/<name>.yaml` composed with `overrides`, outside a Hydra app or inside one of ganinv's (whose config
    tree this is)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=overrides)
    with initialize_config_dir(CONF, version_base=None):
        return compose(name, overrides=overrides)


def slurm_job() -> str | None:
    """This SLURM job's id, `<array job>_<task>` in an array (kept by a requeue), else None."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def default_run_dir(method: str, stamp: str) -> str:
    """Never the clock of a (re)started job: a multirun job's own folder under the sweep folder, named after its
    overrides; a run of a W&B sweep agent (`WANDB_RUN_ID` set) `runs/<method>/wandb-<run id>`, so each trial of an
    agent has its own folder and a re-run of that trial continues there; a run inside a SLURM job
    `runs/<method>/slurm-<job id>`, followed by `_<its overrides>` when it has some, so a requeued job finds its
    checkpoint and two trainings of one job stay apart; else `runs/<method>/<stamp>`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra is not None and hydra.mode == RunMode.MULTIRUN:
        return str(Path(hydra.sweep.dir) / str(hydra.sweep.subdir))
    if run_id := os.environ.get("WANDB_RUN_ID"):
        return f"runs/{method}/wandb-{run_id}"
    if job := slurm_job():
        name = folder_name(job_overrides())
        return f"runs/{method}/slurm-{job}" + (f"_{name}" if name else "")
    return f"runs/{method}/{stamp}"


def job_overrides() -> list[str]:
    """This Hydra job's command-line overrides that name it: all but the keys of
    `hydra.job.config.override_dirname.exclude_keys` (run_dir, resume, threads, and in a multirun the keys that
    every job shares: see `ganinv.workflows.command_line.check_sweep`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return []
    hydra = HydraConfig.get()
    exclude = set(hydra.job.config.override_dirname.exclude_keys)
    parsed = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
    return [o.input_line for o in parsed if o.key_or_group not in exclude]


def folder_name(overrides: list[str], limit: int = 120) -> str:
    """A folder name made of `key=value` overrides: one flat, readable name (path values shortened to their last
    part, a group's `/` written `.`), sorted; whole overrides dropped past `limit` characters. Where anything was
    shortened or dropped, a hash of all the overrides ends it (`_<6 hex>`), so different overrides never share a
    name; the same overrides always give the same one."""
    import hashlib

    parts, lost = [], False
    for line in sorted(overrides):
        key, eq, value = line.partition("=")
        if "/" in value and not value.startswith(("[", "{")):
            value, lost = Path(value.rstrip("/")).name or "root", True
        parts.append(f"{key.replace('/', '.')}{eq}{value}")
    name = ",".join(parts)
    if not lost and len(name) <= limit:
        return name
    kept = ""
    for part in parts:
        if len(kept) + len(part) + 1 > limit - 7:
            break
        kept = f"{kept},{part}" if kept else part
    digest = hashlib.sha256("\n".join(sorted(overrides)).encode()).hexdigest()[:6]
    return f"{kept or parts[0][:limit - 7]}_{digest}"


def job_dirname() -> str:
    """A multirun job's folder name: `folder_name` of its overrides (`default` when it has none)."""
    return folder_name(job_overrides()) or "default"


def _register() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("ganinv_run_dir"):
        OmegaConf.register_new_resolver("ganinv_run_dir", default_run_dir)
        OmegaConf.register_new_resolver("ganinv_job_dirname", job_dirname)


_register()  # every entry point and test reads CONF from here before composing
