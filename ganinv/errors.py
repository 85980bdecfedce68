"""The errors ganinv raises for what a user gave it; each message names the option, key or file and the fix, and
the commands print it as one line (`prog: error: ...`). Defined here, imported from here by every layer."""

from __future__ import annotations

import os


class OptionError(ValueError):
    """A command-line option that is missing, wrong or names a place that cannot be written."""


class ConfigError(ValueError):
    """A configuration that cannot work (a missing or unknown loss weight, a network a method needs, an option
    that contradicts another); names the key."""


class DataError(ValueError):
    """A data folder or file that cannot be used; names it and the fix."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file, the problem and the fix."""

    def __init__(self, path: str | os.PathLike | None, problem: str, fix: str | None = None):
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}{problem}" + (f" {fix}" if fix else ""))
        self.path = None if path is None else str(path)
