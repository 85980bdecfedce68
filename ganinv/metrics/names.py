"""The names of the metrics an evaluation writes (the keys of a record's `metrics`, logged as `eval/<name>`), and
which way each is better: what options that name a metric (`objective=`, the leaderboard's axes) are checked
against before any work."""

from __future__ import annotations

import difflib

HIGHER_IS_BETTER = ("psnr", "ssim", "ms_ssim", "id_sim", "edit_gain", "edit_id", "images_per_second")
DISTORTION = ("mse", "psnr", "psnr_dataset", "ssim", "ms_ssim", "perceptual", "lpips", "id_sim", "id_sim_papers",
              "no_face_pairs", "code_mse")
EDITABILITY = ("lec", "edit_gain", "edit_others", "edit_id", "p_norm", "snd", "w_layer_spread", "w_avg_distance",
               "fid_rec", "fid_edit", "kid_rec", "kid_edit", "fid_attr")
PER_DIRECTION = ("lec", "edit_gain", "edit_others", "edit_id", "fid_attr")  # also `<name>_<direction>`, e.g.
# lec_smile, fid_attr_smile_add
PER_NETWORK = ("perceptual", "lpips")  # also `<name>_<network>`: the metrics config's entries, e.g. lpips_alex


def higher_is_better(metric: str) -> bool:
    return any(metric == k or metric.startswith(k + "_") for k in HIGHER_IS_BETTER)


def direction_of(metric: str) -> str:
    """Which way an optimiser should push a metric: "maximize" or "minimize"."""
    return "maximize" if higher_is_better(metric) else "minimize"


def objectives(value) -> list[str]:
    """`objective=` as a list of metric names: one name, or a list of them (a multi-objective sweep)."""
    from collections.abc import Sequence

    return [str(v) for v in value] if isinstance(value, Sequence) and not isinstance(value, str) else [str(value)]


def unknown_metric(name: str) -> str | None:
    """None when an evaluation can write a metric called `name`; else why not, with the closest names."""
    if name in DISTORTION + EDITABILITY or any(name.startswith(k + "_") for k in PER_DIRECTION + PER_NETWORK):
        return None
    close = difflib.get_close_matches(name, DISTORTION + EDITABILITY, n=1)
    return ("not a metric of the evaluation; " + (f"did you mean {close[0]}? " if close else "")
            + f"the metrics: {', '.join(DISTORTION + EDITABILITY)} (and per direction {'_*, '.join(PER_DIRECTION)}_*; "
            "docs/evaluation.md).")
