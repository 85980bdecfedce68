"""The official files of the methods that predict generator features, read by their key layout: the released
Feature-Style encoder (a bare `fs_encoder_v2` state dict), StyleRes (`e4e`, `latent_avg`, and `generator_smooth`: an
NVIDIA-layout generator whose embedding block holds StyleRes's modules) and SFE (`inverter.*`, `encoder.*`: the
feature editor). `load_method` dispatches here; the manifests and fixtures of tests/fixtures check each layout."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ganinv.checkpoints import CheckpointError
from ganinv.checkpoints.generators import generator_from_state_dict
from ganinv.checkpoints.nvidia import nvidia_to_rosinality
from ganinv.checkpoints.official import build_encoder
from ganinv.encoders.feature_style import FeatureStyleBackbone, SFENets
from ganinv.encoders.styleres import StyleResNets

from .base import PROTOCOL_SIZE, InversionModule
from .e4e import E4EModule
from .feature_style import FeatureStyleModule
from .sfe import SFEModule
from .styleres import StyleResModule


def _backbone_arch(sd: dict, prefix: str) -> dict:
    """The widths and units of a Feature-Style / SFE backbone's state dict (keys under `prefix`)."""
    return {"widths": [int(sd[f"{prefix}block_{i}.0.conv2.weight"].shape[0]) for i in (1, 2, 3, 4)],
            "units": [_count(sd, f"{prefix}block_{i}.") for i in (1, 2, 3, 4)]}


def _count(sd: dict, prefix: str) -> int:
    """How many numbered modules a state dict holds under `prefix` (`styles.`: the W+ heads)."""
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def from_official_feature_style(p: Path, raw: dict, generator: nn.Module | None) -> InversionModule:
    """The released Feature-Style encoder (a bare `fs_encoder_v2` state dict, 143_enc.pth) on its generator (pSp's
    FFHQ decoder and latent average), which it does not hold; 256-px inputs, as its enc_resolution."""
    if generator is None:
        raise CheckpointError(p, "is an official Feature-Style encoder, which holds no generator.",
                              "Pass generator= (the StyleGAN2 of psp_ffhq_encode.pt, with its latent average).")
    try:
        net = FeatureStyleBackbone(_count(raw, "styles."),
                                   int(raw["styles.0.weight"].shape[0]), int(raw["content_layer.1.weight"].shape[0]),
                                   **_backbone_arch(raw, ""))
        net.load_state_dict(raw, strict=True)
        module = FeatureStyleModule(generator=generator, encoder=net, input_size=PROTOCOL_SIZE, feature_warmup=0,
                                    lr_step=None)
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(p, f"does not match the Feature-Style encoder's layout on this generator "
                              f"({str(e).splitlines()[0][:300]}).", "Pass the generator it was trained with.") from None
    return module.eval()


def from_official_sfe(p: Path, raw: dict, generator: nn.Module | None, base: str | os.PathLike | None,
                      load_method: Callable[..., InversionModule]) -> InversionModule:
    """An official StyleFeatureEditor checkpoint (`inverter.fs_backbone.*`, `inverter.fuser.*`, `encoder.*`: the
    feature editor; its `discriminator.*` is a training part) on its generator and e4e, which it does not hold."""
    if generator is None or base is None:
        raise CheckpointError(p, "is an official SFE file, which holds neither its generator nor its e4e.",
                              "Pass generator= (e.g. stylegan2-ffhq-config-f.pt) and base= (e4e_ffhq_encode.pt).")
    sd = raw["state_dict"]
    parts = {"fs_backbone.": "inverter.fs_backbone.", "fuser.": "inverter.fuser.", "editor.": "encoder."}
    own = {mine + k[len(theirs):]: v for mine, theirs in parts.items() for k, v in sd.items() if k.startswith(theirs)}
    input_size = min(PROTOCOL_SIZE, generator.size)
    try:
        nets = SFENets(_count(own, "fs_backbone.styles."), int(own["fs_backbone.styles.0.weight"].shape[0]),
                       int(own["fuser.conv.weight"].shape[0]), depth=_count(own, "fuser.body.") + 1,
                       **_backbone_arch(own, "fs_backbone."))
        nets.load_state_dict(own, strict=True)
        module = SFEModule(generator=generator, encoder=nets, base=load_method(base, generator=generator),
                           input_size=input_size, editor_from=0, feature_warmup=0)
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(p, f"does not match SFE's layout on this generator ({str(e).splitlines()[0][:300]}).",
                              "Pass the generator it was trained with (its W+ layers, style size and channels at "
                              "a quarter of the input size).") from None
    return module.eval()


def from_official_styleres(p: Path, raw: dict) -> InversionModule:
    """The released StyleRes checkpoint: its e4e (`e4e`, `latent_avg`) and its generator (`generator_smooth`, NVIDIA
    layout, conv_clamp 256 as the official `SynthesisBlock`), whose embedding block holds E1 and E2
    (`synthesis.b<r>.modify_feature_*`; the official's unused `dconv3` is dropped); inputs at 4r px (256 for r 64)."""
    nvidia = raw["generator_smooth"]
    ours = {k.split(".", 2)[2]: v for k, v in nvidia.items() if ".modify_feature_" in k and ".dconv3." not in k}
    embed = {int(m[1]) for k in nvidia if (m := re.match(r"synthesis\.b(\d+)\.modify_feature_", k))}
    if len(embed) != 1:
        raise CheckpointError(p, f"holds StyleRes modules at {sorted(embed) or 'no'} resolutions, not one.",
                              "Pass the released styleres_ffhq.pt or a checkpoint saved the same way.")
    r = embed.pop()
    try:
        sd, _ = nvidia_to_rosinality({k: v for k, v in nvidia.items() if ".modify_feature_" not in k}, p)
        avg = raw["latent_avg"].reshape(-1, raw["latent_avg"].shape[-1]).float()
        generator = generator_from_state_dict(sd, source=p, latent_avg=avg[0], conv_clamp=256)
        encoder = build_encoder("Encoder4Editing", raw["e4e"], p)
        encoder.load_state_dict(raw["e4e"], strict=True)
        base = E4EModule(generator=generator, encoder=encoder, progressive_start=None, input_size=4 * r)
        base.latent_avg.copy_(avg.expand(base.n_latent, -1))
        first = ours["modify_feature_alignment.first_layer.weight"]
        channels = int(ours["modify_feature_extraction.first_layer.weight"].shape[1])
        nets = StyleResNets(int(first.shape[1]) - channels, channels, int(first.shape[0]))
        nets.load_state_dict(ours, strict=True)
        module = StyleResModule(generator=generator, encoder=nets, base=base, input_size=4 * r)
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(p, f"does not match StyleRes's layout ({str(e).splitlines()[0][:300]}).",
                              "Pass the released styleres_ffhq.pt or a checkpoint saved the same way.") from None
    return module.eval()
