"""Entry-point plumbing: a user's mistake (a bad file, option or folder) is one line on stderr and exit code 2.

Nothing heavy is imported here, so `--help` and `--cfg job` answer without loading torch."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from hydra.errors import InstantiationException


def _user_error(e: BaseException) -> BaseException | None:
    """The ganinv error behind `e` (Hydra wraps errors raised while instantiating a config), if there is one."""
    from ganinv.checkpoints import CheckpointError
    from ganinv.data import DataError
    from ganinv.methods import ConfigError, TrainingDiverged

    while e is not None:
        if isinstance(e, (CheckpointError, ConfigError, DataError, TrainingDiverged)):
            return e
        e = e.__cause__ if isinstance(e, InstantiationException) else None
    return None


def user_errors(prog: str) -> Callable:
    """Decorate a Hydra task so that ganinv's own errors end the command with `prog: error: ...`, no traceback."""

    def decorate(task: Callable) -> Callable:
        @functools.wraps(task)
        def run(cfg):
            try:
                return task(cfg)
            except Exception as e:
                err = _user_error(e)
                if err is None:
                    raise
                print(f"{prog}: error: {err}", file=sys.stderr)
                sys.exit(2)

        return run

    return decorate
