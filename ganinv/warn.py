"""`warn(message)`: a `GaninvWarning` attributed to the first caller outside ganinv, so it points at the user's
code; the command-line tools print it as one line, `prog: warning: ...` (`ganinv.workflows.command_line`)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent)


class GaninvWarning(UserWarning):
    """Something ganinv worked around (a skipped file, a malformed record): said once, the work goes on."""


def warn(message: str, category: type[Warning] = GaninvWarning) -> None:
    """`warnings.warn` with the stack level of the nearest frame outside the ganinv package."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the frame that called warn()
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
