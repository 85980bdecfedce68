"""Official pSp / e4e / ReStyle checkpoints: `state_dict` (`encoder.*`, `decoder.*`), `opts`, `latent_avg`; and
GAN Inverter's (its LSAP, and the pSp / e4e it trains): `encoder` (its wrapper: `encoder.*`, `latent_avg`),
`decoder` (the generator's keys), `opts`, `global_step` (`from_ganinverter`).

The architecture (backbone depth and widths, style count and size, input channels and size) is read off the
tensor shapes, so the released full-size files and narrow test files load through the same call; the encoder,
decoder and e4e discriminator are then loaded with strict key and shape matching.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganinv.encoders import e4e, psp, restyle
from ganinv.encoders.discriminators import LatentCodesDiscriminator
from ganinv.encoders.ir_se import infer_ir_arch

from .generators import generator_from_state_dict
from .safe_io import CheckpointError, load_torch_file, state_mismatch

KINDS = {
    "GradualStyleEncoder": "psp", "BackboneEncoderUsingLastLayerIntoW": "psp",
    "BackboneEncoderUsingLastLayerIntoWPlus": "psp", "Encoder4Editing": "e4e",
    "BackboneEncoder": "restyle_psp", "ResNetBackboneEncoder": "restyle_psp",
    "ProgressiveBackboneEncoder": "restyle_e4e", "ResNetProgressiveBackboneEncoder": "restyle_e4e",
}
PREFIXES = ("encoder.", "decoder.")


@dataclass
class OfficialModel:
    """What an official checkpoint holds, as ganinv modules (all in eval mode)."""

    kind: str                      # psp | e4e | lsap | restyle_psp | restyle_e4e
    encoder: nn.Module             # encoder(x) is the raw official encoder output
    latent_avg: torch.Tensor | None
    opts: dict
    generator: nn.Module | None = None
    discriminator: nn.Module | None = None
    path: Path | None = field(default=None, repr=False)


def load_official(path: str | os.PathLike, generator: nn.Module | None = None) -> OfficialModel:
    """Load an official pSp / e4e / ReStyle `.pt` or a GAN Inverter one; `generator` is used when the file has no
    `decoder.*` keys."""
    p = Path(path)
    raw = load_torch_file(path)
    if is_ganinverter(raw):
        raw = from_ganinverter(raw, p)
    if not isinstance(raw, dict) or not isinstance(raw.get("state_dict"), dict):
        top = list(raw)[:8] if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(p, f"is not a pSp / e4e / ReStyle checkpoint (no 'state_dict'; top level: {top}).",
                              "Pass the .pt file the official training or download produced.")
    sd = raw["state_dict"]
    stray = [k for k in sd if not k.startswith(PREFIXES)]
    if stray:
        raise CheckpointError(p, f"state_dict has keys outside encoder./decoder.: {stray[:5]}.",
                              "Only official pSp / e4e / ReStyle files are supported.")
    enc_sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    dec_sd = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    if not enc_sd:
        raise CheckpointError(p, "state_dict has no encoder.* keys.", "Is this a generator checkpoint?")
    opts = dict(raw.get("opts") or {})
    encoder_type = opts.get("encoder_type") or _guess_type(enc_sd, opts)
    if encoder_type not in KINDS:
        raise CheckpointError(p, f"has unsupported encoder_type {encoder_type!r}.", f"Supported: {sorted(KINDS)}.")

    latent_avg = raw.get("latent_avg")
    latent_avg = latent_avg.float() if isinstance(latent_avg, torch.Tensor) else None
    encoder = build_encoder(encoder_type, enc_sd, p)
    _load_strict(encoder, enc_sd, p, "encoder", prefix="encoder.")
    # Files written by ganinv-export also record what the shapes cannot tell: the pooled W encoders' input size.
    if "input_size" in opts:
        encoder.input_size = int(opts["input_size"])
    if dec_sd:
        avg_w = None if latent_avg is None else latent_avg.reshape(-1, latent_avg.shape[-1])[0]
        generator = generator_from_state_dict(dec_sd, source=p, latent_avg=avg_w)
    if generator is not None:
        n = getattr(encoder, "n_styles", None)
        if n is not None and n != generator.n_latent:
            raise CheckpointError(p, f"the encoder predicts {n} styles but the generator has {generator.n_latent}.",
                                  "Pass the generator the encoder was trained with.")
        if latent_avg is None and generator.latent_avg is not None:
            latent_avg = generator.latent_avg.clone()
    discriminator = None
    if isinstance(raw.get("discriminator_state_dict"), dict):
        discriminator = _latent_discriminator(raw["discriminator_state_dict"], p)
    kind = "lsap" if KINDS[encoder_type] == "e4e" and float(opts.get("sncd_lambda") or 0) > 0 else KINDS[encoder_type]
    return OfficialModel(kind, encoder.eval(), latent_avg, opts, generator, discriminator, p)


def is_ganinverter(raw: Any) -> bool:
    """Whether a loaded file has GAN Inverter's layout (`encoder` and `decoder` state dicts at the top level)."""
    return isinstance(raw, dict) and isinstance(raw.get("encoder"), dict) and isinstance(raw.get("decoder"), dict) \
        and "state_dict" not in raw


def from_ganinverter(raw: dict, source: Path) -> dict:
    """A GAN Inverter checkpoint (`training/encoder_trainer.py`: `encoder` = its `models.encoder.Encoder` wrapper,
    the network under `encoder.` plus `latent_avg` ([dim] as its trainer takes it from the generator file, or
    [n_styles, dim] converted from an official file); `decoder` = the generator) in the pSp layout."""
    encoder, opts = raw["encoder"], dict(raw.get("opts") or {})
    stray = [k for k in encoder if not k.startswith("encoder.") and k != "latent_avg"]
    if stray or not any(k.startswith("encoder.") for k in encoder):
        raise CheckpointError(source, f"has GAN Inverter's layout but its 'encoder' holds {stray[:3] or 'no'} "
                              "keys outside encoder.* / latent_avg.",
                              "Pass a checkpoint GAN Inverter's training saved.")
    if opts.get("refine_mode") not in (None, "", "none"):
        raise CheckpointError(source, f"is a GAN Inverter {opts['refine_mode']} checkpoint: ganinv reads GAN "
                              "Inverter's encoders (pSp, e4e, LSAP) only.", "Pass an encoder checkpoint.")
    latent_avg = encoder.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor) and latent_avg.ndim == 1:  # its trainer keeps the generator's [dim]
        n = len([k for k in encoder if re.fullmatch(r"encoder\.styles\.\d+\.linear\.weight", k)]) or 1
        latent_avg = latent_avg[None].expand(n, -1).clone()
    return {"state_dict": {**{k: v for k, v in encoder.items() if k.startswith("encoder.")},
                           **{f"decoder.{k}": v for k, v in raw["decoder"].items()}},
            "latent_avg": latent_avg, "opts": opts,
            **({"discriminator_state_dict": raw["discriminator_state_dict"]}
               if isinstance(raw.get("discriminator_state_dict"), dict) else {})}


def build_encoder(encoder_type: str, sd: dict[str, torch.Tensor], source: Path | None = None) -> nn.Module:
    """An encoder of the official class `encoder_type` whose sizes fit the state dict `sd` (keys unprefixed)."""
    try:
        if encoder_type.startswith("ResNet"):
            cls = restyle.ResNetProgressiveBackboneEncoder if "Progressive" in encoder_type \
                else restyle.ResNetBackboneEncoder
            widths = tuple(int(sd[f"body.{i}.conv1.weight"].shape[0]) for i in (0, 3, 7, 13))
            return cls(input_nc=int(sd["conv1.weight"].shape[1]), widths=widths, **_heads(sd))
        arch = infer_ir_arch(sd)
        if encoder_type == "BackboneEncoderUsingLastLayerIntoW":
            return psp.BackboneEncoderUsingLastLayerIntoW(style_dim=int(sd["linear.weight"].shape[0]), **arch)
        if encoder_type == "BackboneEncoderUsingLastLayerIntoWPlus":
            dim = int(sd["output_layer_2.3.weight"].shape[0])
            return psp.BackboneEncoderUsingLastLayerIntoWPlus(
                n_styles=int(sd["linear.weight"].shape[0]) // dim, style_dim=dim, **arch)
        cls = {"GradualStyleEncoder": psp.GradualStyleEncoder, "Encoder4Editing": e4e.Encoder4Editing,
               "BackboneEncoder": restyle.BackboneEncoder,
               "ProgressiveBackboneEncoder": restyle.ProgressiveBackboneEncoder}[encoder_type]
        return cls(**arch, **_heads(sd))
    except (KeyError, IndexError, ValueError) as e:
        raise CheckpointError(source, f"encoder weights do not fit {encoder_type} ({e}).",
                              "Check opts['encoder_type'] against the file's encoder.* keys.") from None


def _heads(sd: dict[str, torch.Tensor]) -> dict[str, int]:
    """n_styles, style_dim and the input size implied by head 0's number of stride-2 convs (1/16 map)."""
    n_styles = len([k for k in sd if re.fullmatch(r"styles\.\d+\.linear\.weight", k)])
    n_convs = len([k for k in sd if re.fullmatch(r"styles\.0\.convs\.\d+\.weight", k)])
    return {"n_styles": n_styles, "style_dim": int(sd["styles.0.linear.weight"].shape[0]),
            "input_size": 16 * 2**n_convs}


def _guess_type(sd: dict, opts: dict) -> str:
    if "conv1.weight" in sd:
        return "ResNetBackboneEncoder"
    if "latlayer1.weight" in sd:
        return "Encoder4Editing" if "stylegan_size" in opts else "GradualStyleEncoder"
    if "output_layer_2.3.weight" in sd:
        return "BackboneEncoderUsingLastLayerIntoWPlus"
    return "BackboneEncoderUsingLastLayerIntoW" if "linear.weight" in sd else "BackboneEncoder"


def _latent_discriminator(sd: Any, source: Path) -> LatentCodesDiscriminator:
    linears = sorted(int(k.split(".")[1]) for k in sd if re.fullmatch(r"mlp\.\d+\.weight", k))
    if not linears:
        raise CheckpointError(source, "discriminator_state_dict has no mlp.*.weight keys.")
    d = LatentCodesDiscriminator(int(sd[f"mlp.{linears[0]}.weight"].shape[1]), len(linears))
    _load_strict(d, sd, source, "discriminator")
    return d.eval()


def _load_strict(module: nn.Module, sd: dict[str, Any], source: Path | None, what: str, prefix: str = "") -> None:
    """load_state_dict(strict=True), or one CheckpointError listing the keys as the file spells them (`prefix`)."""
    mismatch = state_mismatch(module.state_dict(), sd, prefix)
    if mismatch:
        raise CheckpointError(source, f"{what} weights do not match {type(module).__name__}; {mismatch}.",
                              "The file is not an unmodified official checkpoint of this kind.")
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
