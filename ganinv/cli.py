"""Entry-point plumbing: a user's mistake (a bad file, option or folder) is one line on stderr and exit code 2.

Nothing heavy is imported here, so `--help` and `--cfg job` answer without loading torch."""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from hydra.errors import InstantiationException


class OptionError(ValueError):
    """A command-line option that is missing or names a place that cannot be written; says which and the fix."""


def check_writable(value: str, key: str) -> None:
    """That the file or folder `value` (given as `key=`) can be created: its nearest existing ancestor is a folder
    this process can write in. Nothing is created."""
    path = Path(str(value)).expanduser().absolute()
    existing = path.parent if path.is_file() else path  # an existing file is replaced: its folder must be writable
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"{key}={value}: {existing} is a file, so nothing can be written below it. Choose another "
                          f"{key}.")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        raise OptionError(f"{key}={value}: cannot write in {existing} ({e.strerror or e}). Choose another {key}.") \
            from None


def unknown_key(config_name: str, overrides: list[str]) -> OptionError | None:
    """The error for an override of a key the composed config does not have, naming the full key, the keys beside
    it and the closest one ("did you mean"), or None when the overrides compose."""
    import difflib
    import re

    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException
    from omegaconf import OmegaConf

    from ganinv.configs import CONF

    with initialize_config_dir(CONF, version_base=None):
        try:
            compose(config_name, overrides=overrides)
            return None
        except ConfigCompositionException as e:
            found = re.search(r"Could not override '([^']+)'", str(e))
            if not found:
                return None  # Hydra's own message says it better (a bad group option lists the choices)
            key = found.group(1)
            rest = [o for o in overrides if o.split("=")[0].lstrip("+~") != key]
            cfg = compose(config_name, overrides=rest)
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    keys = sorted(str(k) for k in node) if OmegaConf.is_dict(node) else []
    close = difflib.get_close_matches(leaf, keys, n=1)
    hint = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
    return OptionError(f"{key} is not an option; {hint}{parent or 'the config'} has: {', '.join(keys)}.")


def check_command_line(prog: str, config_name: str, writable: tuple[str, ...] = (),
                       argv: list[str] | None = None) -> None:
    """Before Hydra composes or makes any folder: no override names a key the config lacks, and the `writable`
    options (folders Hydra makes) can be written; else `prog: error: ...` and exit 2. `--help` / `--cfg` /
    `--info` are left to Hydra, and so is a multirun's composition."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a.split("=")[0] in ("--help", "-h", "--cfg", "-c", "--info", "--hydra-help") for a in argv):
        return
    given = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    multirun = any(a in ("-m", "--multirun") for a in argv)
    try:
        check_plugins(given)
        if not multirun and (err := unknown_key(config_name, [a for a in argv if "=" in a])):
            raise err
        for key in writable:
            if key in given:
                for value in given[key].split(","):  # a multirun sweep lists several
                    check_writable(value, key)
    except OptionError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)


PLUGINS = {("hydra/launcher", "slurm"): ("hydra_submitit_launcher", "slurm"),
           ("hydra/launcher", "slurm_local"): ("hydra_submitit_launcher", "slurm"),
           ("hydra/launcher", "joblib"): ("hydra_joblib_launcher", "sweeps"),
           ("hydra/sweeper", "optuna"): ("hydra_optuna_sweeper", "sweeps")}


def check_plugins(given: dict[str, str]) -> None:
    """The Hydra plugin a launcher or sweeper choice needs is installed; else which extra brings it."""
    import importlib.util

    def installed(module: str) -> bool:
        try:
            return importlib.util.find_spec(f"hydra_plugins.{module}") is not None
        except ModuleNotFoundError:  # no Hydra plugin at all
            return False

    for (group, choice), (module, extra) in PLUGINS.items():
        if given.get(group) == choice and not installed(module):
            raise OptionError(f"{group}={choice} needs a Hydra plugin that is not installed: pip install "
                              f"'ganinv[{extra}]'.")


def _only_hydra_files(folder: Path) -> bool:
    """A folder that holds nothing but what Hydra wrote before the command failed (its config, its job log)."""
    return folder.is_dir() and all(p.name == ".hydra" or p.suffix == ".log" for p in folder.iterdir())


def _user_error(e: BaseException) -> BaseException | None:
    """The ganinv error behind `e` (Hydra wraps errors raised while instantiating a config), if there is one."""
    from ganinv.checkpoints import CheckpointError
    from ganinv.data import DataError
    from ganinv.methods import ConfigError, TrainingDiverged

    while e is not None:
        if isinstance(e, (CheckpointError, ConfigError, DataError, OptionError, TrainingDiverged)):
            return e
        e = e.__cause__ if isinstance(e, InstantiationException) else None
    return None


def user_errors(prog: str, required: tuple[str, ...] = (), writable: tuple[str, ...] = (),
                run_dir: str | None = None) -> Callable:
    """Decorate a Hydra task so that ganinv's own errors end the command with `prog: error: ...`, no traceback.

    Before the task: every `required` option is set and every `writable` one can be written. After a failure, the
    folder in option `run_dir` is removed if it holds only what Hydra wrote into it."""

    def decorate(task: Callable) -> Callable:
        @functools.wraps(task)
        def run(cfg):
            from omegaconf import OmegaConf

            from ganinv.warn import GaninvWarning

            shown = warnings.showwarning

            def one_line(message, category, filename, lineno, file=None, line=None):
                if issubclass(category, GaninvWarning):
                    print(f"{prog}: warning: {message}", file=sys.stderr)
                else:
                    shown(message, category, filename, lineno, file, line)

            warnings.showwarning = one_line  # ganinv's own warnings as the command's lines, not Python's
            try:
                for key in required:
                    if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
                        raise OptionError(f"{key}= is required (see {prog} --help).")
                for key in writable:
                    if not OmegaConf.is_missing(cfg, key) and cfg.get(key):
                        check_writable(cfg.get(key), key)
                return task(cfg)
            except Exception as e:
                err = _user_error(e)
                if err is None:
                    raise
                folder = Path(str(cfg.get(run_dir))) if run_dir and not OmegaConf.is_missing(cfg, run_dir) else None
                if folder is not None and _only_hydra_files(folder):
                    shutil.rmtree(folder, ignore_errors=True)
                print(f"{prog}: error: {err}", file=sys.stderr)
                sys.exit(2)

        return run

    return decorate
