"""Distortion (`distortion`) and editability (`editability`) metrics, the `EvaluationSuite` that runs them all on one
inverter and the one inversion loop (`inverting`); protocols in docs/evaluation.md."""

from .distortion import DistortionMetrics, PerImageMean, Scored, ms_ssim, mse, psnr, ssim
from .editability import WDistribution, edit_quality, fid_kid, inception_features, lec, lec_distances, trimmed_mean
from .inverting import Inverted, invert_batches, invert_images
from .suite import TOY_EDITS, EvaluationSuite, build_suite

__all__ = ["TOY_EDITS", "DistortionMetrics", "EvaluationSuite", "Inverted", "PerImageMean", "WDistribution",
           "build_suite", "edit_quality", "fid_kid", "inception_features", "invert_batches", "invert_images", "lec",
           "lec_distances", "ms_ssim", "mse", "psnr", "Scored", "ssim", "trimmed_mean"]
