"""Where the Hydra config tree is (`conf/` beside the package in a source checkout, `ganinv/conf/` in a wheel), and
the `${ganinv_run_dir:<method>,<stamp>}` resolver of `ganinv-train`'s default run folder (and its multirun jobs'
`${ganinv_job_dirname:<overrides>}`)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
CONF = str(next((p for p in (_PACKAGE / "conf", _PACKAGE.parent / "conf") if (p / "train.yaml").is_file()),
                _PACKAGE.parent / "conf"))


def default_run_dir(method: str, stamp: str) -> str:
    """A multirun job's own folder under the sweep folder, named after its overrides (beside Hydra's files); a
    single run inside a SLURM job `runs/<method>/slurm-<job id>` (a requeued job keeps its id, so it finds its
    checkpoint); else `runs/<method>/<stamp>`. Never the clock of a (re)started job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ganinv.jobs import slurm_job

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra is not None and hydra.mode == RunMode.MULTIRUN:
        return str(Path(hydra.sweep.dir) / str(hydra.sweep.subdir))
    job = slurm_job()
    return f"runs/{method}/slurm-{job}" if job else f"runs/{method}/{stamp}"


def job_dirname(overrides: str, limit: int = 255) -> str:
    """A multirun job's folder name: its overrides (`a=1,b=2`), or when longer than a file name may be (`limit`
    bytes) their start and a hash of them all; the same overrides give the same name."""
    import hashlib

    overrides = overrides or "default"
    if len(overrides.encode()) <= limit:
        return overrides
    start = overrides.encode()[:limit - 13].decode(errors="ignore")
    return f"{start}...{hashlib.sha256(overrides.encode()).hexdigest()[:10]}"


def _register() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("ganinv_run_dir"):
        OmegaConf.register_new_resolver("ganinv_run_dir", default_run_dir)
        OmegaConf.register_new_resolver("ganinv_job_dirname", job_dirname)


_register()  # every entry point and test reads CONF from here before composing
