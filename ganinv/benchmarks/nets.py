"""The methods a device check measures, built with random weights: at `toy` size (the toy recipes, narrow
encoders, the committed 64-px toy generator) or at `full` size (the official encoders, loss networks and 256-px
inputs against a random 1024-px config-f generator: nothing is downloaded, so throughput and memory are those of
the real architectures and the images mean nothing)."""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

METHODS = ("psp", "psp_w", "e4e", "lsap", "restyle_psp", "restyle_e4e", "idinvert", "hyperstyle", "hfgi")
ON_BASE = ("hyperstyle", "hfgi")  # they start from a trained e4e: a random one here
NAMES = {"psp": "pSp (W+)", "psp_w": "pSp (W)", "e4e": "e4e", "lsap": "LSAP", "restyle_psp": "ReStyle-pSp",
         "restyle_e4e": "ReStyle-e4e", "idinvert": "In-Domain", "hyperstyle": "HyperStyle (on e4e)",
         "hfgi": "HFGI (on e4e)"}
OPTIMISERS = ("optim_w", "optim_wplus", "idinvert", "pti")  # conf/refine
# The narrow toy encoders of the quick tests: the toy check shows that every path runs, not how fast.
TOY_WIDTHS = {"hyperstyle": ["method.encoder.widths=[8,8,12,16]", "method.encoder.hyper_dim=16"],
              "hfgi": ["method.encoder.residue_widths=[8,8,12]", "method.encoder.align_widths=[8,8,8,8]"],
              "idinvert": ["method.encoder.channel_max=32", "method.discriminator.channel_max=32"]}
FULL_SIZE = {"input": 256, "generator": 1024}


@contextlib.contextmanager
def random_loss_weights() -> Iterator[Path]:
    """A folder of random-weight files in the released layouts (torchvision's AlexNet and VGG16 in a torch hub
    cache, ArcFace IR-SE50 as `model_ir_se50.pth`), set as torch's hub folder while the context lasts; yields the
    folder (the `weights_dir` of the configs)."""
    from torchvision.models import alexnet, vgg16

    from ganinv.losses.identity import ArcFaceBackbone
    from ganinv.losses.perceptual import TORCHVISION_FILES

    old = torch.hub.get_dir()
    with tempfile.TemporaryDirectory(prefix="ganinv-random-weights-") as folder:
        root = Path(folder)
        (root / "checkpoints").mkdir()
        torch.save(alexnet(weights=None).state_dict(), root / "checkpoints" / TORCHVISION_FILES["alex"])
        torch.save(vgg16(weights=None).state_dict(), root / "checkpoints" / TORCHVISION_FILES["vgg"])
        torch.save(ArcFaceBackbone().state_dict(), root / "model_ir_se50.pth")
        torch.hub.set_dir(folder)
        try:
            yield root
        finally:
            torch.hub.set_dir(old)


def full_generator(seed: int = 0):
    """A random FFHQ-sized StyleGAN2 (1024 px, config-f: 18 W+ layers of 512) with its average code."""
    from ganinv.stylegan2 import Generator

    torch.manual_seed(seed)
    g = Generator(FULL_SIZE["generator"], 512, 8, 2).eval().requires_grad_(False)
    g.latent_avg = g.mean_latent(4096)[0]
    return g


def compose_method(name: str, size: str, weights: Path | None = None):
    """The composed `ganinv-train` config of `name` at `size`: the toy recipe (narrow), or the official one."""
    from ganinv.configs import compose_config

    if size == "toy":
        narrow = TOY_WIDTHS.get(name, ["method.encoder.widths=[8,8,12,16]"])
        overrides = [f"experiment=toy_{name}", *narrow]
    else:
        overrides = [f"method={name}", f"weights_dir={weights}"]
    return compose_config("train", overrides)


def build_method(name: str, size: str, generator, weights: Path | None = None, seed: int = 0, base=None):
    """The method `name` (one of METHODS) on `generator`, random weights, on the CPU; HyperStyle and HFGI on `base`
    (default: a random e4e of the same size)."""
    from omegaconf import OmegaConf

    from ganinv.methods import method_from_config

    cfg = compose_method(name, size, weights)
    options = OmegaConf.to_container(cfg.method, resolve=True)
    kwargs = {}
    if name in ON_BASE:
        options.pop("base")
        kwargs["base"] = base if base is not None else build_method("e4e", size, generator, weights, seed)
    torch.manual_seed(seed)
    input_size = generator.size if size == "toy" else FULL_SIZE["input"]
    return method_from_config(options, generator, cfg.loss, input_nc=3, input_size=input_size,
                              max_iterations=10**9, **kwargs)


def refiner_node(name: str, size: str):
    """(`conf/refine/<name>`, its `loss` node, its default number of steps) for a timing run: PTI from the
    method's codes and without its early stop (which random LPIPS weights would make meaningless)."""
    from ganinv.configs import compose_config
    from ganinv.methods.idinvert import REFINE

    extra = ["refine.stop_below=-1", "refine.pivot=null"] if name == "pti" else []
    loss = "loss=toy_optim" if size == "toy" else "loss=optim_wplus"
    cfg = compose_config("eval", [f"refine={name}", loss, *extra])
    steps = cfg.refine.steps if cfg.refine.steps is not None else REFINE["steps"]  # In-Domain's: the run's own
    return cfg.refine, cfg.loss, int(steps)


def copy_to(module, device: str):
    """A copy of a CPU-built module on `device` (the template stays for the next option)."""
    return copy.deepcopy(module).to(device)
