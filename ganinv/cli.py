"""Entry-point plumbing: a user's mistake (a bad file, option or folder) is one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from hydra.errors import InstantiationException

from ganinv.checkpoints import CheckpointError
from ganinv.data import DataError
from ganinv.methods import TrainingDiverged

USER_ERRORS = (CheckpointError, DataError, TrainingDiverged)


def _user_error(e: BaseException) -> BaseException | None:
    """The ganinv error behind `e` (Hydra wraps errors raised while instantiating a config), if there is one."""
    while e is not None:
        if isinstance(e, USER_ERRORS):
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
            except (*USER_ERRORS, InstantiationException) as e:
                err = _user_error(e)
                if err is None:
                    raise
                print(f"{prog}: error: {err}", file=sys.stderr)
                sys.exit(2)

        return run

    return decorate
