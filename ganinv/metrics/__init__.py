"""Distortion (`distortion`) and editability (`editability`) metrics, and the `EvaluationSuite` that runs them all
on one inverter; protocols in docs/evaluation.md."""

from .distortion import DistortionMetrics, PerImageMean, ms_ssim, mse, prepare, psnr, ssim
from .editability import WDistribution, edit_quality, fid_kid, inception_features, lec, lec_distances, trimmed_mean
from .suite import TOY_EDITS, EvaluationSuite, toy_suite

__all__ = ["TOY_EDITS", "DistortionMetrics", "EvaluationSuite", "PerImageMean", "WDistribution", "edit_quality",
           "fid_kid", "inception_features", "lec", "lec_distances", "ms_ssim", "mse", "prepare", "psnr", "ssim",
           "toy_suite", "trimmed_mean"]
