"""In-Domain inversion's domain-regularised optimisation (Zhu et al. 2020): from the codes given (an In-Domain
encoder's, or any method's), minimise pixel MSE + λ_feat · perceptual + λ_enc · ‖w − E(G(w))‖², with E the
domain-guided encoder of an In-Domain run: codes stay where that encoder maps images."""

from __future__ import annotations

from torch import Tensor

from ganinv.data.transforms import resize
from ganinv.inversion import Inversion
from ganinv.methods import IDInvertModule
from ganinv.methods.idinvert import REFINE

from .base import Refiner
from .optimise import optimize_codes


class DomainRegularisedOptimiser(Refiner):
    """`regulariser`: the In-Domain run whose encoder regularises (and whose perceptual net scores); options
    `steps`, `lr`, `feature_weight` (λ_feat), `encoder_weight` (λ_enc; 0: the same optimisation unregularised),
    by default that run's own (`method.refine`, the official values unless trained otherwise)."""

    NAME = "In-Domain optimiser"
    DEFAULTS = dict(REFINE)

    def __init__(self, module, perceptual_net=None, show: bool = False, regulariser: IDInvertModule | None = None,
                 **options):
        regulariser = module if regulariser is None else regulariser
        if not isinstance(regulariser, IDInvertModule):
            raise ValueError("refine=idinvert needs an In-Domain run: set refine.checkpoint=<an IDInvert run's "
                             ".ckpt> (or give one as checkpoint=)")
        if regulariser.hparams["generator_hash"] != module.hparams["generator_hash"]:
            raise ValueError("refine.checkpoint was trained against another generator than the method being "
                             "refined: refine with an In-Domain run on the same generator")
        self.regulariser = regulariser
        run = {k: v for k, v in regulariser.refine.items() if k in REFINE}
        super().__init__(module, regulariser.nets.perceptual if hasattr(regulariser.nets, "perceptual") else None,
                         show, **{**run, **{k: v for k, v in options.items() if v is not None}})

    def label(self) -> str:
        """Without its regulariser when `encoder_weight` is 0, and every option that differs from the official."""
        o = self.options
        changed = [f"{k} {o[k]:g}" for k in REFINE if o[k] != REFINE[k] and (k, o[k]) != ("encoder_weight", 0)]
        return ("In-Domain optimiser" + (" without regulariser" if o["encoder_weight"] == 0 else "")
                + (f" ({', '.join(changed)})" if changed else ""))

    def to(self, device) -> DomainRegularisedOptimiser:
        self.regulariser = self.regulariser.to(device)
        return super().to(device)

    def refine(self, inversion: Inversion, images: Tensor) -> Inversion:
        o, enc = self.options, self.regulariser

        def domain(codes: Tensor, image: Tensor) -> Tensor:
            again = enc.encode(resize(image, enc.input_size))
            return o["encoder_weight"] * (codes - again).pow(2).flatten(1).mean(1).sum()

        y = resize(images.to(self.module.latent_avg), self.module.generator.size)
        return optimize_codes(self.module, y, inversion, int(o["steps"]), float(o["lr"]),
                              {"l2": 1.0, "perceptual": o["feature_weight"]}, self.distance, regulariser=domain,
                              show=self.show)
