"""`OnBaseModule`: a method that starts from another method's inversion — HyperStyle and HFGI on a frozen e4e (or
any inverter of the same generator): the base module is kept whole (its weights in every checkpoint, sharing this
module's generator) and rebuilt from `base_method` when the checkpoint is loaded."""

from __future__ import annotations

from typing import Any

import torch

from ganinv.data.transforms import resize
from ganinv.encoders.ir_se import infer_ir_arch
from ganinv.inversion import Inversion

from .base import ConfigError, InversionModule


class OnBaseModule(InversionModule):
    """`base`: the frozen InversionModule whose inversion this method improves (given built, e.g. by
    `load_method(method.base)`); its class name and hyperparameters are saved as `base_method`."""

    OPTIONAL_TERMS = ()  # the codes are the frozen base's: nothing to align

    ddp_ignore = ("generator.", "nets.", "base.")

    def __init__(self, *args, base: InversionModule | None = None, base_method: dict[str, Any] | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(base, InversionModule):
            raise ConfigError(f"{type(self).__name__} starts from a trained method's inversion: set method.base=<its "
                              "checkpoint> (e.g. an e4e run's last.ckpt or e4e_ffhq_encode.pt)")
        if base.hparams["generator_hash"] != self.hparams["generator_hash"]:
            raise ConfigError("method.base was trained with another generator: give a base trained on this one")
        spec = {**{k: v for k, v in base.hparams.items() if k != "generator_config"}, "loss": None}
        if "encoder" not in spec:  # an official file: its encoder's architecture from its weights
            if not hasattr(base.encoder, "input_layer"):
                raise ConfigError(f"method.base: a {type(base).__name__} from an official file cannot be the base "
                                  "(only IR-SE pSp / e4e files can); train it with ganinv-train instead")
            sd = {k[len("encoder."):]: v for k, v in base.state_dict().items() if k.startswith("encoder.")}
            spec["encoder"] = {k: v for k, v in infer_ir_arch(sd).items() if k != "input_nc"}
            spec["encoder"]["widths"] = list(spec["encoder"]["widths"])
        # inference only, on this generator (stored once): the base's training parts (discriminators) are dropped
        self.base = type(base)(generator=self.generator, **spec).eval().requires_grad_(False)
        own = self.base.state_dict()
        self.base.load_state_dict({k: v for k, v in base.state_dict().items() if k in own}, strict=True)
        self.hparams["base_method"] = {"name": type(base).__name__, "label": base.label(), "hparams": spec}

    def train(self, mode: bool = True) -> OnBaseModule:
        super().train(mode)
        self.base.eval()  # frozen on purpose (e4e's BN statistics stay the trained ones)
        return self

    @torch.no_grad()
    def base_inversion(self, x: torch.Tensor) -> tuple[Inversion, torch.Tensor]:
        """The base's inversion of inputs at `input_size` and its reconstruction at that size (ŷ_0)."""
        inv = self.base.inversion(resize(x, self.base.input_size))
        return inv, self.pooled(self.reconstruct(inv))

    def pooled(self, image: torch.Tensor) -> torch.Tensor:
        """A generator image at the encoder's input size (pSp's face_pool)."""
        return torch.nn.functional.adaptive_avg_pool2d(image, self.input_size)
