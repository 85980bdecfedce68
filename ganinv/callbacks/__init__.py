"""Lightning callbacks shared by every ganinv training run: atomic checkpoints, exact resume, iteration progress."""

from .checkpoint import AtomicCheckpoint
from .progress import IterationProgress
from .resume import RNGState

__all__ = ["AtomicCheckpoint", "IterationProgress", "RNGState"]
