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

from ganinv.errors import OptionError


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
                       argv: list[str] | None = None, check: Callable | None = None) -> list[str]:
    """Before Hydra composes or makes any folder: no override names a key the config lacks, and the `writable`
    options (folders Hydra makes) can be written; in a multirun (`-m`), every swept value composes (each value of
    each swept key, the search space's keys too) and `check(composed config with its hydra node) -> problems` finds
    none, so that no job is submitted that would fail on its node. Else `prog: error: ...` (one line a problem) and
    exit 2. `--help` / `--cfg` / `--info` are left to Hydra.

    Returns the overrides to add to a multirun's command line: its job folders are named after the keys that vary
    (`ganinv.configs.folder_name`), so the keys every job shares join `override_dirname.exclude_keys`."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a.split("=")[0] in ("--help", "-h", "--cfg", "-c", "--info", "--hydra-help") for a in argv):
        return []
    given = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    try:
        check_plugins(given)
        for key in writable:
            if key in given:
                for value in given[key].split(","):  # a multirun sweep lists several
                    check_writable(value, key)
        if not multirun:
            if err := unknown_key(config_name, overrides):
                raise err
            return []
        return check_sweep(config_name, overrides, check)
    except OptionError as e:
        for line in str(e).splitlines():
            print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(2)


def check_sweep(config_name: str, overrides: list[str], check: Callable | None) -> list[str]:
    """`check_command_line` of a multirun: each sweep point composed and checked (OptionError listing every
    problem); the folder-naming override to add."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    from ganinv.configs import CONF

    def composed(point: list[str]):
        try:
            return compose(config_name, overrides=point, return_hydra_config=True)
        except ConfigCompositionException as e:
            raise _Unknown(point, e) from None

    problems: list[str] = []
    try:
        with initialize_config_dir(CONF, version_base=None):
            points = sweep_points(overrides)
            first = composed(points[0])
            given = {o.split("=")[0].lstrip("+~") for o in overrides}
            space = [f"{k}={v}" for k, v in (first.hydra.sweeper.get("params") or {}).items() if k not in given]
            points += sweep_points(points[0] + space)[1:] if space else []  # a sweeper config's search space
            for point in points:
                cfg = first if point is points[0] else composed(point)
                problems += [p for p in (check(cfg) if check else []) if p not in problems]
    except _Unknown as e:  # explained once Hydra's global state is free again
        raise unknown_key(config_name, e.point) or OptionError(one_line(str(e.cause))) from None
    if problems:
        raise OptionError("\n".join(problems))
    shared, varies = shared_keys(overrides + space)
    if not (shared and varies) or any(o.startswith("hydra.job.config.override_dirname") for o in overrides):
        return []
    keys = dict.fromkeys([*first.hydra.job.config.override_dirname.exclude_keys, *shared])
    return [f"hydra.job.config.override_dirname.exclude_keys=[{','.join(keys)}]"]


class _Unknown(Exception):
    """A sweep point that does not compose (`unknown_key` explains it outside the composing context)."""

    def __init__(self, point: list[str], cause: Exception):
        super().__init__(str(cause))
        self.point, self.cause = point, cause


def one_line(text: str) -> str:
    """Hydra's multi-line message (a bad group option and its choices) on one line."""
    text = text.split("Config search path:")[0]
    head, *choices = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return head + (f"; {choices[0]} {', '.join(choices[1:])}" if choices else "")


def sweep_points(overrides: list[str], per_key: int = 8) -> list[list[str]]:
    """Single-valued override lists that together give each swept key each of its first `per_key` values (an
    interval: its two ends), the others at their first: the jobs a sweep's check composes, not the whole product.
    Glob sweeps (they need Hydra's config loader) are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    choices = []
    for o in OverridesParser.create().parse_overrides(overrides):
        if not o.is_sweep_override():
            choices.append([o.input_line])
            continue
        try:
            values = list(o.sweep_string_iterator())[:per_key] if o.is_discrete_sweep() else \
                [str(o.value().start), str(o.value().end)]
        except Exception:  # noqa: BLE001 - a glob
            continue
        choices.append([f"{o.get_key_element()}={v}" for v in values])
    first = [c[0] for c in choices]
    return [first, *[first[:i] + [v] + first[i + 1:] for i, c in enumerate(choices) for v in c[1:]]]


def shared_keys(overrides: list[str]) -> tuple[list[str], bool]:
    """The keys a multirun's command line sets to one value for every job (not Hydra's own), and whether any
    key varies."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return ([o.key_or_group for o in parsed if not o.is_sweep_override() and not o.is_hydra_override()],
            any(o.is_sweep_override() for o in parsed))


PLUGINS = {("hydra/launcher", "slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
           ("hydra/launcher", "slurm_local"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
           ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "sweeps"),
           ("hydra/sweeper", "optuna"): ("optuna", "sweeps")}  # ganinv's own sweeper plugin, on Optuna


def check_plugins(given: dict[str, str]) -> None:
    """The package a launcher or sweeper choice needs is installed; else which extra brings it."""
    import importlib.util

    def installed(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # no Hydra plugin at all
            return False

    for (group, choice), (module, extra) in PLUGINS.items():
        if given.get(group) == choice and not installed(module):
            raise OptionError(f"{group}={choice} needs {module.split('.')[-1]}, which is not installed: pip "
                              f"install 'ganinv[{extra}]'.")
    if given.get("hydra/sweeper") == "optuna":  # Hydra finds plugins by scanning the `hydra_plugins` folders on
        # sys.path, which an editable install of ganinv does not put there: ganinv's sweeper is named to it here
        from hydra.core.plugins import Plugins

        from hydra_plugins.ganinv_optuna_sweeper.optuna_sweeper import OptunaSweeper

        Plugins.instance().register(OptunaSweeper)


def _only_hydra_files(folder: Path) -> bool:
    """A folder that holds nothing but what Hydra wrote before the command failed (its config, its job log)."""
    return folder.is_dir() and all(p.name == ".hydra" or p.suffix == ".log" for p in folder.iterdir())


def _user_error(e: BaseException) -> BaseException | None:
    """The ganinv error behind `e` (Hydra wraps errors raised while instantiating a config), if there is one."""
    from ganinv.errors import CheckpointError, ConfigError, DataError
    from ganinv.methods import TrainingDiverged

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
