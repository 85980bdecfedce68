"""Load StyleGAN2 generators from rosinality `.pt`, NVIDIA `.pkl` / state dicts, pSp-family files and ours."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from ganinv.stylegan2 import Generator
from ganinv.warn import warn

from .nvidia import PersistentObject, generator_kwargs, module_state_dict, nvidia_to_rosinality, read_network_pickle
from .safe_io import CheckpointError, atomic_save, check_file, file_kind, load_torch_file, state_mismatch

ARCH_FIX = ("Omit the architecture arguments to infer them from the file, or pass the ones it was trained with "
            "(size, style_dim, n_mlp, channel_multiplier, channel_max).")
LATENT_AVG_SAMPLES = 10_000


def load_generator(path: str | os.PathLike, **arch_overrides: Any) -> Generator:
    """Load a StyleGAN2 generator (eval mode, float32, CPU) with `G.latent_avg` set.

    Reads rosinality checkpoints (`g_ema`, `latent_avg`), NVIDIA stylegan2-ada-pytorch network pickles and
    `G_ema` state dicts, the `decoder.*` of pSp / e4e / ReStyle checkpoints, and files written by `save_generator`.
    The architecture is inferred from the tensor shapes unless given.
    """
    p = check_file(path)
    raw = read_network_pickle(p) if file_kind(p) == "pickle" else load_torch_file(p)  # by content, not suffix
    state_dict, latent_avg, config = extract_generator(raw, p)
    return generator_from_state_dict(state_dict, source=p, latent_avg=latent_avg, config=config, **arch_overrides)


def extract_generator(raw: Any, source: Path | str | None = None) -> tuple[dict, torch.Tensor | None, dict]:
    """Find the generator in a loaded checkpoint: (rosinality state dict, latent_avg or None, known config)."""
    if not isinstance(raw, dict):
        raise CheckpointError(source, f"holds a {type(raw).__name__}, not a checkpoint dict.")
    if "g_ema" in raw:  # rosinality / ganinv
        return _tensors(raw["g_ema"], source, "g_ema"), raw.get("latent_avg"), dict(raw.get("ganinv_config") or {})
    if "G_ema" in raw:  # NVIDIA: a pickled module, or its state dict with the constructor kwargs
        g = raw["G_ema"]
        if isinstance(g, PersistentObject):
            kwargs, g = g["state"].get("_init_kwargs", {}), module_state_dict(g)
        else:
            kwargs, g = raw.get("config") or {}, _tensors(g, source, "G_ema")
        return (*nvidia_to_rosinality(g, source), _nvidia_config(kwargs, source))
    sd = raw.get("state_dict")
    if isinstance(sd, dict) and any(k.startswith("decoder.") for k in sd):  # pSp / e4e / ReStyle
        dec = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
        avg = raw.get("latent_avg")
        return dec, (avg[0] if isinstance(avg, torch.Tensor) and avg.ndim == 2 else avg), {}
    if "style.1.weight" in raw:
        return _tensors(raw, source, "state dict"), None, {}
    if "synthesis.b4.const" in raw:
        return (*nvidia_to_rosinality(_tensors(raw, source, "state dict"), source), {})
    keys = list(raw)[:10]
    hint = " It is an encoder checkpoint without a decoder." if isinstance(sd, dict) else ""
    raise CheckpointError(source, f"holds no StyleGAN2 generator (top-level keys: {keys}).{hint}",
                          "Expected 'g_ema' (rosinality), 'G_ema' (NVIDIA), a pSp/e4e/ReStyle 'state_dict' with "
                          "'decoder.*' keys, or a generator state dict.")


def generator_from_state_dict(state_dict: dict[str, torch.Tensor], *, source: Path | str | None = None,
                              latent_avg: torch.Tensor | None = None, config: dict | None = None,
                              **arch_overrides: Any) -> Generator:
    """Build a Generator whose architecture fits `state_dict` (or `arch_overrides`) and load it strictly."""
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    kwargs = {**infer_generator_config(state_dict, source), **(config or {})}
    if {"size", "channel_multiplier", "channel_max"} & arch_overrides.keys():
        kwargs.pop("channels", None)
    kwargs.update(arch_overrides)
    try:
        g = Generator(**kwargs)
    except (TypeError, ValueError) as e:
        raise CheckpointError(source, f"cannot build a generator with {kwargs}: {e}.", ARCH_FIX) from None
    _load_strict(g, state_dict, source)
    if latent_avg is None:
        warn(f"{source}: no latent_avg in the checkpoint; using the mean of {LATENT_AVG_SAMPLES} mapped z drawn "
             "with seed 0.")
        with torch.no_grad():
            z = torch.randn(LATENT_AVG_SAMPLES, g.style_dim, generator=torch.Generator().manual_seed(0))
            latent_avg = g.style(z).mean(0)
    latent_avg = latent_avg.float().reshape(-1)
    if latent_avg.numel() != g.style_dim:
        raise CheckpointError(source, f"latent_avg has {latent_avg.numel()} values, expected style_dim="
                              f"{g.style_dim}.", "The file is inconsistent; re-export it.")
    g.latent_avg = latent_avg
    return g.eval().requires_grad_(False)


def infer_generator_config(sd: dict[str, torch.Tensor], source: Path | str | None = None) -> dict:
    """size, style_dim, n_mlp and the channel table, read off the tensor shapes of a rosinality state dict."""
    try:
        n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
        levels = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
        channels = {4: sd["input.input"].shape[1]}
        channels.update({2 ** (k + 3): sd[f"convs.{2 * k}.conv.weight"].shape[1] for k in range(levels)})
        return {"size": 2 ** (levels + 2), "style_dim": sd["style.1.weight"].shape[1], "n_mlp": n_mlp,
                "channels": channels}
    except (KeyError, IndexError) as e:
        raise CheckpointError(source, f"is not a StyleGAN2 generator state dict (no key {e}).") from None


def _load_strict(g: Generator, sd: dict, source: Path | str | None) -> None:
    mismatch = state_mismatch(g.state_dict(), sd)
    if mismatch:
        raise CheckpointError(source, f"does not match the generator architecture; {mismatch}.", ARCH_FIX)
    g.load_state_dict(sd, strict=True)


def _tensors(sd: Any, source: Path | str | None, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(source, f"'{what}' is not a state dict of tensors.")
    return sd


def _nvidia_config(kwargs: dict, source: Path | str | None) -> dict:
    if not kwargs:
        return {}
    try:
        return generator_kwargs(kwargs)
    except (KeyError, ValueError) as e:
        raise CheckpointError(source, f"has an unsupported NVIDIA generator configuration: {e}.") from None


def save_generator(g: Generator, path: str | os.PathLike) -> Path:
    """Write `g` in rosinality's layout (`g_ema`, `latent_avg`) plus its architecture; loadable weights-only."""
    config = {k: v for k, v in g.config.items() if v is not None}
    obj = {"g_ema": g.state_dict(), "ganinv_config": config}
    if g.latent_avg is not None:
        obj["latent_avg"] = g.latent_avg.detach().cpu()
    return atomic_save(obj, path)
