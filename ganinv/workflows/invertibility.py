"""`ganinv-train-invertibility`: SAM's invertibility predictor for a method's inversions, trained as the authors'
`train_invertibility.py` on single-space inversions (`single_latent_inv.py`): each training image inverted by the
method, then optimised in each latent space alone (W+, or W+ and one feature block's residual, unmasked) at SAM's
settings (`refine=sam`); the spatial perceptual error each leaves is that space's target map. SGD (momentum 0.9,
weight decay 5e-4), the backbone at `lr` and the rest at 10x, poly schedule (power 0.9), MSE over every space's
map, `epochs` epochs (the inversions, the long part, are kept batch by batch: the same command resumes them); a
held-out fifth measures it against its own untrained start and against the constant
predictor (each space's mean map of the training images)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.progress import Progress

log = logging.getLogger("ganinv")


def training_images(cfg, module) -> torch.Tensor:
    """The first `n_images` targets of the data set's training split, at the generator's size."""
    from hydra.utils import instantiate

    size = module.generator.size
    dm = instantiate(cfg.data, input_size=size, target_size=size)
    dm.setup("fit")
    n = min(int(cfg.n_images), len(dm.train_set))
    return torch.stack([dm.train_set[i]["y"] for i in range(n)])


def error_maps(sam, images: torch.Tensor, batch_size: int, pieces=None, show: bool = False) -> torch.Tensor:
    """[N, spaces, H, W]: the spatial perceptual error of each image's inversion into each of `sam.spaces` alone;
    each batch's maps kept in `pieces` (a `ganinv.checkpoints.pieces.Pieces`: an interrupted command resumes)."""
    from ganinv.methods.base import match_size
    from ganinv.refine.invertibility import W_PLUS, space_resolution, spatial_error

    m, out = sam.module, []
    with Progress(transient=True, disable=not show) as bar:
        task = bar.add_task("single-space inversions", total=len(images) * len(sam.spaces))
        for i, y in enumerate(images.split(batch_size)):
            if pieces is not None and (done := pieces.get(f"maps_{i}")) is not None:
                out.append(done)
                bar.advance(task, len(y) * len(sam.spaces))
                continue
            y = y.to(m.latent_avg)
            start = m.invert(y)
            maps = []
            for space in sam.spaces:
                r = space_resolution(space)
                fitted = sam.fit(start, y, {} if space == W_PLUS else {r: y.new_ones(len(y), 1, r, r)})
                with torch.no_grad():
                    maps.append(spatial_error(sam.perceptual_net, match_size(m.reconstruct(fitted), y).clamp(-1, 1),
                                              y)[:, 0])
                bar.advance(task, len(y))
            out.append(torch.stack(maps, 1).cpu())
            if pieces is not None:
                pieces.put(f"maps_{i}", out[-1])
    return torch.cat(out)


def fit_predictor(net, images: torch.Tensor, targets: torch.Tensor, epochs: int, batch_size: int, lr: float,
                  momentum: float = 0.9, weight_decay: float = 5e-4, show: bool = False):
    """The authors' training of the predictor `net` on (image, error maps) pairs: returns it in eval mode."""
    spaces = net.spaces
    net.train()
    rest = [p for n, p in net.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.SGD([{"params": net.backbone.parameters(), "lr": lr}, {"params": rest, "lr": 10 * lr}],
                          lr=lr, momentum=momentum, weight_decay=weight_decay)
    per_epoch = -(-len(images) // batch_size)
    total, step = epochs * per_epoch, 0
    with Progress(transient=True, disable=not show) as bar:
        task = bar.add_task("invertibility predictor", total=total)
        for _ in range(epochs):
            order = torch.randperm(len(images))
            for idx in order.split(batch_size):
                scale = (1 - step / total) ** 0.9  # poly
                opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr * scale, 10 * lr * scale
                pred = net(images[idx])
                loss = F.mse_loss(torch.stack([pred[s][:, 0] for s in spaces], 1), targets[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.advance(task)
    return net.eval()


def predictor_error(net, images: torch.Tensor, targets: torch.Tensor) -> float:
    """The MSE of the predicted maps to the target maps."""
    with torch.no_grad():
        pred = net(images)
    return float(F.mse_loss(torch.stack([pred[s][:, 0] for s in net.spaces], 1), targets))


def train_invertibility(cfg, show: bool = True) -> tuple[Path, dict]:
    """The configured predictor trained and saved at `cfg.output`; returns its path and what it measured."""
    from omegaconf import OmegaConf

    from ganinv.checkpoints.pieces import Pieces
    from ganinv.errors import ConfigError, OptionError
    from ganinv.methods import build_loss_nets, load_method
    from ganinv.metrics.suite import float32_hash
    from ganinv.refine import InvertibilityPredictor, SpatiallyAdaptiveMultilayer
    from ganinv.workflows.inverter import job_of

    torch.manual_seed(int(cfg.seed))
    module = load_method(cfg.checkpoint).eval()
    options = {k: v for k, v in OmegaConf.to_container(cfg.refine, resolve=True).items() if k != "_target_"}
    try:
        sam = SpatiallyAdaptiveMultilayer(module, build_loss_nets(cfg.loss).get("perceptual"), **options)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    images = training_images(cfg, module)
    n_val = max(1, round(len(images) * float(cfg.val_fraction)))
    if len(images) - n_val < 1:
        raise OptionError(f"n_images={cfg.n_images}: the predictor needs at least 2 images (one held out)")
    log.info("inverting %d images into %s (%d steps each)", len(images), ", ".join(sam.spaces), sam.options["steps"])
    pieces = Pieces(Path(f"{cfg.output}.partial"), job_of(cfg, "output", "epochs", "lr", "momentum", "weight_decay"))
    targets = error_maps(sam, images, int(cfg.batch_size), pieces, show)
    images = images.to(targets)
    train, val = slice(n_val, None), slice(None, n_val)
    net = InvertibilityPredictor.pretrained(sam.spaces)
    untrained = predictor_error(net.eval(), images[val], targets[val])
    net = fit_predictor(net, images[train], targets[train], int(cfg.epochs), int(cfg.batch_size), float(cfg.lr),
                        float(cfg.momentum), float(cfg.weight_decay), show)
    constant = targets[train].mean(0, keepdim=True).expand_as(targets[val])
    measured = {"val_mse": predictor_error(net, images[val], targets[val]), "untrained_val_mse": untrained,
                "constant_val_mse": float(F.mse_loss(constant, targets[val])),
                "mean_error": dict(zip(sam.spaces, targets.mean((0, 2, 3)).tolist(), strict=True))}
    net.save(cfg.output, generator_hash=float32_hash(module.generator), checkpoint=str(cfg.checkpoint),
             n_images=len(images), steps=int(sam.options["steps"]), measured=measured)
    pieces.clear()
    return Path(cfg.output), measured
