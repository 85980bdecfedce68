"""Lightning callbacks: atomic checkpoints, exact resume, iteration progress (every training run), and the
inversion metrics and image grids logged during a method's validation."""

from .checkpoint import AtomicCheckpoint
from .images import ImageGridCallback
from .metrics import InversionMetricsCallback
from .periodic import ValidationSubset
from .progress import IterationProgress
from .resume import RNGState

__all__ = ["AtomicCheckpoint", "ImageGridCallback", "InversionMetricsCallback", "IterationProgress", "RNGState",
           "ValidationSubset"]
