"""e4e encoder (Tov et al. 2021): one base code w0 plus per-layer offsets, switched on progressively."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .ir_se import WIDTHS, check_input_size
from .psp import GradualStyleEncoder, upsample_add

# The official `ProgressiveStage.Inference` value: every offset active.
INFERENCE_STAGE = 18


def progressive_codes(w0: torch.Tensor, deltas, n_styles: int, stage: int) -> torch.Tensor:
    """[B, n_styles, dim]: w0 everywhere, plus delta_i on layers 1 .. min(stage, n_styles - 1).

    `deltas(i)` computes the i-th offset lazily, so inactive heads (and the features only they need) never run.
    """
    codes = [w0]
    for i in range(1, n_styles):
        codes.append(w0 + deltas(i) if i <= stage else w0)
    return torch.stack(codes, dim=1)


class Encoder4Editing(GradualStyleEncoder):
    """Same modules (and keys) as pSp's GradualStyleEncoder; head 0 gives w0, heads i >= 1 give offsets.

    `progressive_stage` (int) sets how many offsets are active: 0 is W only; the default (`INFERENCE_STAGE` or
    n_styles, whichever is larger) activates all of them, like official inference.
    """

    def __init__(self, num_layers: int = 50, mode: str = "ir_se", input_nc: int = 3, n_styles: int = 18,
                 style_dim: int = 512, widths: Sequence[int] = WIDTHS, input_size: int = 256,
                 progressive_stage: int | None = None):
        super().__init__(num_layers, mode, input_nc, n_styles, style_dim, widths, input_size)
        self.progressive_stage = max(INFERENCE_STAGE, n_styles) if progressive_stage is None else progressive_stage

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(self, x)
        c1, c2, c3 = self.pyramid(x)
        fpn: dict[str, torch.Tensor] = {}

        def features(i: int) -> torch.Tensor:
            # The FPN levels are built only once a head that reads them is active (as in the official code).
            if i < self.coarse_ind:
                return c3
            if "p2" not in fpn:
                fpn["p2"] = upsample_add(c3, self.latlayer1(c2))
            if i < self.middle_ind:
                return fpn["p2"]
            if "p1" not in fpn:
                fpn["p1"] = upsample_add(fpn["p2"], self.latlayer2(c1))
            return fpn["p1"]

        w0 = self.styles[0](c3)
        return progressive_codes(w0, lambda i: self.styles[i](features(i)), self.n_styles,
                                 int(self.progressive_stage))
