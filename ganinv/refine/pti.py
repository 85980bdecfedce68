"""Pivotal Tuning Inversion (Roich et al. 2022): keep a pivot code (a method's inversion, or W optimisation as in
the paper) and fine-tune the generator around it for each image — L2 + LPIPS to the image, plus the locality
regulariser that keeps the tuned generator's images equal to the original's at codes a fixed distance from the
pivot towards random samples. Each image's tuned generator is kept as offsets of the synthesis weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import Tensor

from ganinv.configs import yaml_defaults
from ganinv.data.transforms import resize
from ganinv.inversion import Inversion
from ganinv.methods.base import match_size

from .base import Refiner
from .optimise import CodeOptimiser


def synthesis_parameters(generator: torch.nn.Module) -> dict[str, Tensor]:
    """The parameters an image's tuning changes: every synthesis parameter (the mapping network never sees a W
    code, so tuning it would change nothing)."""
    return {n: p for n, p in generator.named_parameters() if not n.startswith("style.")}


class PivotalTuning(Refiner):
    """Per-image generator tuning around the codes given (or a W / W+ pivot fitted first: `pivot`); returns them
    with `offsets` — each image's tuned synthesis weights minus the generator's, float32, as many numbers per
    image as the synthesis network has (`Inversion.storage_bytes`). Images of a batch are tuned together but
    independently (their own offsets; Adam is element-wise; each stops on its own)."""

    NAME = "PTI"
    DEFAULTS = yaml_defaults("refine", "pti")  # the official defaults (PTI's configs/hyperparameters.py)

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        if self.options["pivot"] not in (None, "w", "w+"):
            raise ValueError(f"refine.pivot={self.options['pivot']!r} is not one of null, w, w+")
        if self.perceptual_net is None and (self.options["perceptual"] or self.options["regulariser_perceptual"]):
            raise ValueError("PTI's LPIPS terms need a perceptual net: choose loss/perceptual=<net> (lpips_alex for "
                             "faces), or set refine.perceptual=0 and refine.regulariser_perceptual=0")

    def label(self) -> str:
        pivot, changed = self.options["pivot"], self.changed(skip=("pivot",))
        return "PTI" + (f" on a {pivot.upper()} pivot" if pivot else "") + (f" ({changed})" if changed else "")

    def codes(self, inversion: Inversion, images: Tensor) -> Inversion:
        """The pivot: tuning never moves the codes."""
        o = self.options
        if not o["pivot"]:
            return inversion
        return CodeOptimiser(self.module, self.perceptual_net, space=o["pivot"], steps=o["pivot_steps"],
                             lr=o["pivot_lr"], perceptual=o["perceptual"]).refine(inversion, images)

    def refine(self, inversion: Inversion, images: Tensor) -> Inversion:
        o, m = self.options, self.module
        inversion = self.codes(inversion, images)
        y = resize(images.to(m.latent_avg), m.generator.size)
        base = synthesis_parameters(m.generator)
        start = inversion.offsets or {}
        offsets = {n: (start[n].to(y) if n in start else y.new_zeros(len(y), *p.shape)).clone().requires_grad_(True)
                   for n, p in base.items()}
        opt = torch.optim.Adam(offsets.values(), lr=float(o["lr"]))
        active = torch.ones(len(y), dtype=torch.bool, device=y.device)
        with torch.enable_grad(), Progress(transient=True, disable=not self.show) as bar:
            task = bar.add_task("pivotal tuning", total=int(o["steps"]))
            for step in range(int(o["steps"])):
                tuned = inversion.replace(offsets=offsets)
                y_hat = match_size(m.reconstruct(tuned), y)
                lpips = self.distance(y_hat, y)
                active &= lpips.detach() > o["stop_below"]  # the official early stop, per image
                if not active.any():
                    break
                per_image = o["l2"] * F.mse_loss(y_hat, y, reduction="none").flatten(1).mean(1)
                per_image = per_image + o["perceptual"] * lpips
                if o["regulariser_every"] and step % int(o["regulariser_every"]) == 0:
                    per_image = per_image + self.locality(tuned)
                frozen = {n: v.detach()[~active].clone() for n, v in offsets.items()} if not active.all() else None
                opt.zero_grad(set_to_none=True)
                per_image[active].sum().backward()
                opt.step()
                if frozen is not None:  # a stopped image keeps its offsets (Adam's momentum would move them)
                    with torch.no_grad():
                        for n, v in offsets.items():
                            v[~active] = frozen[n]
                bar.advance(task)
        return inversion.replace(offsets={n: v.detach() for n, v in offsets.items()})

    def locality(self, tuned: Inversion) -> Tensor:
        """PTI's locality regulariser per image [B]: at `regulariser_samples` codes `w_p + α (w_z − w_p) / ‖w_z −
        w_p‖` (w_z a mapped z truncated towards the average), L2 + LPIPS between the tuned and the original
        generator's images, averaged over samples."""
        o, m = self.options, self.module
        g, pivot = m.generator, tuned.codes
        total = pivot.new_zeros(len(pivot))
        for _ in range(int(o["regulariser_samples"])):
            with torch.no_grad():
                w_z = g.style(torch.randn(len(pivot), g.style_dim, device=pivot.device))
                w_z = m.latent_avg[0] + o["truncation"] * (w_z - m.latent_avg[0])
                direction = w_z.unsqueeze(1) - pivot
                codes = pivot + o["regulariser_alpha"] * direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1)
                before = m.reconstruct(tuned.replace(codes=codes, offsets=None))
            after = m.reconstruct(tuned.replace(codes=codes))
            total = total + o["regulariser_l2"] * F.mse_loss(after, before, reduction="none").flatten(1).mean(1)
            if o["regulariser_perceptual"] > 0:
                total = total + o["regulariser_perceptual"] * self.distance(after, before)
        return total / int(o["regulariser_samples"])
