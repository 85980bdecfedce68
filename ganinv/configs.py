"""Where the Hydra config tree is (`conf/` beside the package in a source checkout, `ganinv/conf/` in a wheel), and
the `${ganinv_run_dir:<method>,<stamp>}` resolver of `ganinv-train`'s default run folder."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
CONF = str(next((p for p in (_PACKAGE / "conf", _PACKAGE.parent / "conf") if (p / "train.yaml").is_file()),
                _PACKAGE.parent / "conf"))


def default_run_dir(method: str, stamp: str) -> str:
    """`runs/<method>/<stamp>` for a single run; a multirun job's own folder under the sweep directory (named
    after its overrides), so that every job has its own run folder beside Hydra's files."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra is not None and hydra.mode == RunMode.MULTIRUN:
        return str(Path(hydra.sweep.dir) / str(hydra.sweep.subdir))
    return f"runs/{method}/{stamp}"


def _register() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("ganinv_run_dir"):
        OmegaConf.register_new_resolver("ganinv_run_dir", default_run_dir)


_register()  # every entry point and test reads CONF from here before composing
