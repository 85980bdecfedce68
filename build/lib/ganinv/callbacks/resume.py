"""Every random number generator's state in the checkpoint, so a resumed run draws what an uninterrupted one would."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


class RNGState(pl.Callback):
    """Saves and restores the Python, NumPy, torch CPU and CUDA generators (the data's randomness is keyed by
    epoch and index and needs none of them)."""

    def state_dict(self) -> dict:
        np_state = np.random.get_state()
        state = {"python": random.getstate(), "torch": torch.get_rng_state(),
                 "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                           "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        random.setstate(_as_tuple(state["python"]))
        torch.set_rng_state(state["torch"])
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
