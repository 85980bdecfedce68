"""A time budget that a device check keeps: each measurement runs only when its estimate fits what is left, and
one that overruns is interrupted (SIGALRM) before the budget ends, so that the report is still written in time."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator


class OutOfTime(Exception):
    """Raised inside a measurement when the budget (less the reserve for writing the report) has run out."""


class Budget:
    """`seconds` from now, `reserve` of them kept for the report."""

    def __init__(self, seconds: float, reserve: float = 5.0):
        self.seconds, self.reserve, self.began = float(seconds), float(reserve), time.monotonic()

    def used(self) -> float:
        return time.monotonic() - self.began

    def left(self) -> float:
        """Seconds left for measurements."""
        return self.seconds - self.reserve - self.used()

    def fits(self, estimate: float) -> bool:
        return estimate < self.left()

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Raises `OutOfTime` in the code within when the time left runs out, and again every second until the code
        gives up (a library that catches the first, as torch.compile's workers may, meets the next); main thread
        only: elsewhere the estimates alone keep the budget."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        if self.left() <= 0:
            raise OutOfTime

        def expired(signum, frame):
            raise OutOfTime

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, self.left(), 1.0)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
