"""`load_method`: any inversion checkpoint — ours or an official pSp / e4e / ReStyle `.pt` — as an
`InversionModule` in eval mode."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ganinv.checkpoints import (
    CheckpointError,
    generator_from_state_dict,
    is_ganinverter,
    load_official,
    load_torch_file,
    state_hash,
)
from ganinv.data.transforms import PROTOCOL_SIZE
from ganinv.encoders import BackboneEncoderUsingLastLayerIntoW
from ganinv.stylegan2 import Generator

from .base import ConfigError, InversionModule
from .e4e import E4EModule
from .feature_style import FeatureStyleModule
from .hfgi import HFGIModule
from .hyperstyle import HyperStyleModule
from .idinvert import IDInvertModule
from .lsap import LSAPModule
from .official_features import from_official_feature_style, from_official_sfe, from_official_styleres
from .psp import PSPModule
from .restyle import ReStyleModule
from .sfe import SFEModule
from .styleres import StyleResModule

METHODS = {cls.__name__: cls for cls in (PSPModule, E4EModule, ReStyleModule, IDInvertModule, HyperStyleModule,
                                         HFGIModule, LSAPModule, FeatureStyleModule, StyleResModule, SFEModule)}


def build_loss_nets(loss: Mapping[str, Any] | None) -> dict[str, Any]:
    """The objects a `conf/loss` node configures: the `perceptual` and `identity` networks (built only when their
    weight is > 0) and `r1` (lazy R1 of e4e's and In-Domain's discriminators)."""
    from hydra.utils import instantiate

    loss = dict(loss or {})
    weights, built = dict(loss.get("weights") or {}), {}
    for name, key in (("perceptual", "perceptual"), ("identity", "id")):
        if float(weights.get(key, 0)) > 0:
            if not loss.get(name):
                raise ConfigError(f"loss.weights.{key} is {weights[key]} but loss.{name} is none: choose "
                                  f"loss/{name}=<net> or set loss.weights.{key}=0")
            built[name] = instantiate(loss[name])
    if loss.get("r1"):
        built["r1"] = instantiate(loss["r1"])
    return built


def method_from_config(method_cfg, generator: nn.Module, loss_cfg, **kwargs) -> InversionModule:
    """A method module built by Hydra from a `conf/method` node and a `conf/loss` node (DictConfigs or dicts),
    plus `kwargs` (input channels and size, iteration budget); its options arrive as plain data (they are the
    checkpoint's hyperparameters: the optimiser a `_partial_` node the module builds), loss networks built here."""
    from hydra.utils import get_class, instantiate
    from omegaconf import OmegaConf

    def plain(node):  # resolved where it stands in its config (interpolations may point outside the node)
        return OmegaConf.to_container(node if OmegaConf.is_config(node) else OmegaConf.create(node), resolve=True)

    options, loss = plain(method_cfg), plain(loss_cfg)
    if isinstance(options.get("base"), str):  # HyperStyle, HFGI: the trained method they start from
        if options["base"] == "???":
            raise ConfigError(f"{get_class(options['_target_']).__name__} starts from a trained method: set "
                              "method.base=<its checkpoint> (e.g. an e4e run's checkpoints/last.ckpt, or "
                              "e4e_ffhq_encode.pt)")
        kwargs["base"] = load_method(options.pop("base"), generator=generator)
    method = instantiate(options, _partial_=True, _recursive_=False, _convert_="all")  # the node's options, as data
    return method(generator=generator, loss=loss, loss_nets=build_loss_nets(loss), **kwargs)


def load_method(path: str | os.PathLike, generator: nn.Module | None = None,
                base: str | os.PathLike | None = None) -> InversionModule:
    """A trained method from a ganinv run checkpoint (`last.ckpt`, `best.ckpt`) or an official pSp / e4e /
    ReStyle / HyperStyle / Feature-Style / StyleRes / SFE file; `generator` for official files without a decoder
    (ours carry their generator's weights); `base` for official HyperStyle files, which hold no initial encoder (its
    W encoder or e4e file), and for SFE files (their e4e file)."""
    p = Path(path)
    raw = load_torch_file(p)
    if isinstance(raw, dict) and isinstance(raw.get("ganinv"), dict):
        return _from_run(p, raw, generator)
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        if any(k.startswith("hypernet.") for k in raw["state_dict"]):
            return _from_official_hyperstyle(p, raw, generator, base)
        if any(k.startswith("inverter.fs_backbone.") for k in raw["state_dict"]):
            return from_official_sfe(p, raw, generator, base, load_method)
        return _from_official(p, generator)
    if is_ganinverter(raw):
        return _from_official(p, generator)
    if isinstance(raw, dict) and "content_layer.0.weight" in raw and "styles.0.weight" in raw:
        return from_official_feature_style(p, raw, generator)
    if isinstance(raw, dict) and {"e4e", "generator_smooth"} <= raw.keys():
        return from_official_styleres(p, raw)
    top = list(raw)[:6] if isinstance(raw, dict) else type(raw).__name__
    raise CheckpointError(p, "is neither a ganinv run checkpoint nor an official pSp / e4e / ReStyle / LSAP / "
                          f"HyperStyle / Feature-Style / StyleRes / SFE file (top level: {top}).",
                          "Pass <run_dir>/checkpoints/last.ckpt or an official .pt.")


def _from_run(p: Path, raw: dict, generator: nn.Module | None) -> InversionModule:
    name = raw["ganinv"].get("method")
    if name not in METHODS:
        raise CheckpointError(p, f"holds an unknown method {name!r}.", f"Known: {', '.join(METHODS)}.")
    hp = upgraded(dict(raw.get("hyper_parameters") or {}))
    sd = raw["state_dict"]
    if generator is None:
        g_sd = {k[len("generator."):]: v for k, v in sd.items() if k.startswith("generator.")}
        generator = Generator(**hp.pop("generator_config"))
        generator.load_state_dict(g_sd, strict=True)
        generator.latent_avg = sd["latent_avg"][0].clone()
    else:
        hp.pop("generator_config", None)
        if state_hash(generator) != hp.get("generator_hash"):
            raise CheckpointError(p, "was trained with another generator (content hash differs).",
                                  "Pass the generator the run used, or none: the checkpoint carries it.")
    try:
        if hp.get("base_method"):  # HyperStyle, HFGI: the frozen method they start from, on the same generator
            spec = hp["base_method"]
            hp["base"] = METHODS[spec["name"]](generator=generator, **spec["hparams"])
        module = METHODS[name](generator=generator, loss_nets=build_loss_nets(hp.get("loss")), **hp)
        module.load_state_dict(sd, strict=True)
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(p, f"does not rebuild as {name} ({str(e).splitlines()[0][:300]}).",
                              "The file is damaged or from an incompatible ganinv version.") from None
    return module.eval()


def upgraded(hp: dict) -> dict:
    """A run's hyperparameters as this version names them: runs saved before the discriminators' options were
    the method's (`method.discriminator`) kept e4e's as `loss.w_pool_size` / `loss.discriminator_lr` and
    In-Domain's as `discriminator_lr`."""
    from .e4e import DISCRIMINATOR as E4E
    from .idinvert import DISCRIMINATOR as IDINVERT

    loss = dict(hp.get("loss") or {})
    if "w_pool_size" in loss or "discriminator_lr" in loss:
        hp["discriminator"] = {"pool_size": loss.pop("w_pool_size", E4E["pool_size"]), "optimizer": {
            **E4E["optimizer"], "lr": loss.pop("discriminator_lr", E4E["optimizer"]["lr"])}}
        hp["loss"] = loss
    if "discriminator_lr" in hp:
        hp["discriminator"] = {**(hp.get("discriminator") or {}),
                               "optimizer": {**IDINVERT["optimizer"], "lr": hp.pop("discriminator_lr")}}
    return hp


def _from_official(p: Path, generator: nn.Module | None) -> InversionModule:
    m = load_official(p, generator)
    if m.generator is None:
        raise CheckpointError(p, "has no decoder.* weights.", "Pass generator= (the StyleGAN2 it was trained with).")
    opts, enc = m.opts, m.encoder
    common = {"generator": m.generator, "encoder": enc, "input_nc": int(opts.get("input_nc", 3)),
              "input_size": int(getattr(enc, "input_size", PROTOCOL_SIZE)),
              "start_from": "avg" if opts.get("start_from_latent_avg", True) and m.latent_avg is not None
              else "zero"}
    if m.kind == "psp":
        space = "w" if isinstance(enc, BackboneEncoderUsingLastLayerIntoW) else "w+"
        module = PSPModule(space=space, **common)
    elif m.kind in ("e4e", "lsap"):
        module = (LSAPModule if m.kind == "lsap" else E4EModule)(progressive_start=None, **common)
    else:
        common["input_nc"] = enc_input_nc(enc) - 3
        module = ReStyleModule(variant=m.kind.split("_")[1], backbone="resnet" if hasattr(enc, "conv1") else "irse",
                               n_iters_per_batch=int(opts.get("n_iters_per_batch", 5)), progressive_start=None,
                               **{**common, "start_from": "avg"})
    if m.latent_avg is not None:
        avg = m.latent_avg.reshape(-1, m.latent_avg.shape[-1]).float()
        module.latent_avg.copy_(avg.expand(module.n_latent, -1))
    return module.eval()


def _from_official_hyperstyle(p: Path, raw: dict, generator: nn.Module | None,
                              base: str | os.PathLike | None) -> InversionModule:
    """An official HyperStyle checkpoint (`hypernet.*`, `decoder.*`, `opts`, `latent_avg`) on its initial encoder."""
    from ganinv.encoders.hyperstyle import SharedWeightsHyperNetResNet

    from .hyperstyle import modulated_layers

    sd, opts = raw["state_dict"], dict(raw.get("opts") or {})
    if base is None:
        raise CheckpointError(p, "is an official HyperStyle file, which holds no initial encoder.",
                              f"Pass base=<the W encoder or e4e .pt it was trained with> (its opts name "
                              f"{opts.get('w_encoder_checkpoint_path', 'none')}).")
    decoder = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    if generator is None:
        if not decoder:
            raise CheckpointError(p, "has no decoder.* weights.", "Pass generator= (the StyleGAN2 it trained with).")
        avg = raw.get("latent_avg")
        generator = generator_from_state_dict(decoder, source=p, latent_avg=None if avg is None else avg.reshape(
            -1, avg.shape[-1])[0])
    hyper = {k[len("hypernet."):]: v for k, v in sd.items() if k.startswith("hypernet.")}
    widths = [int(hyper["conv1.weight"].shape[0])] + [
        int(hyper[f"body.{i}.conv1.weight"].shape[0]) for i in (3, 7, 13)]
    tune = opts.get("layers_to_tune") or ""
    tune = [int(j) for j in str(tune).split(",")] if tune else None
    layers = [spec for _, spec in modulated_layers(generator)]
    input_size = min(PROTOCOL_SIZE, generator.size)
    net = SharedWeightsHyperNetResNet(layers, tune, input_nc=int(hyper["conv1.weight"].shape[1]), widths=widths,
                                      input_size=input_size, hyper_dim=int(hyper["shared_weight_hypernet.w1"].shape[0]))
    try:
        net.load_state_dict(hyper, strict=True)
    except RuntimeError as e:
        raise CheckpointError(p, f"hypernet.* does not match HyperStyle's layout ({str(e).splitlines()[1][:300]}).",
                              "Pass the generator it was trained with, or a complete HyperStyle file.") from None
    start = load_method(base, generator=generator)
    module = HyperStyleModule(generator=generator, encoder=net, base=start, input_nc=3, input_size=input_size,
                              layers_to_tune=tune, n_iters_per_batch=int(opts.get("n_iters_per_batch", 5)))
    return module.eval()


def enc_input_nc(encoder: nn.Module) -> int:
    first = encoder.conv1 if hasattr(encoder, "conv1") else encoder.input_layer[0]
    return int(first.in_channels)
