"""FID as GAN Inverter's and StyleFeatureEditor's tables compute it (`fid=pytorch_fid`): pytorch-fid's InceptionV3
(the FID weights `pt_inception-2015-12-05-6726825d.pth`, 2048-d pool features, its own resize to 299 px) on the
images as 8-bit files, and pytorch-fid's Fréchet distance (float64 statistics, scipy's matrix square root).

The weights file is read from the torch hub cache (or `path`) with `weights_only=True`; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

FILE = "pt_inception-2015-12-05-6726825d.pth"
URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FILE
TEXT = (f"pytorch-fid's InceptionV3 ({FILE}, 2048-d pool features) on the images as 8-bit files (reconstructions "
        "truncated), its Fréchet distance; reconstructions and edits against the evaluated targets")


class PytorchFID(nn.Module):
    """[0, 1] images -> pytorch-fid's 2048-d features, each image first read as an 8-bit file would be."""

    def __init__(self, path: str | os.PathLike | None = None):
        super().__init__()
        try:
            from pytorch_fid import inception
        except ImportError:
            from ganinv.data import DataError

            raise DataError("fid=pytorch_fid needs pytorch-fid: pip install 'ganinv[published]'.") from None
        from ganinv.checkpoints import CheckpointError
        from ganinv.checkpoints.safe_io import load_torch_file

        where = Path(path) if path else Path(torch.hub.get_dir()) / "checkpoints" / FILE
        if not where.is_file():
            raise CheckpointError(where, "pytorch-fid's Inception weights are not there (fid=pytorch_fid).",
                                  f"Copy {FILE} ({URL}) to {where.parent}/ (TORCH_HOME moves that folder).")
        state = load_torch_file(where)
        original = inception.load_state_dict_from_url  # pytorch-fid builds its net and then fetches the weights
        inception.load_state_dict_from_url = lambda *args, **kwargs: state
        try:
            self.net = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        finally:
            inception.load_state_dict_from_url = original
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> PytorchFID:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = (images.float().clamp(0, 1) * 255).round() / 255  # the 8-bit file's values (exact for saved images)
        return self.net(x)[0].flatten(1)


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """pytorch-fid's Fréchet distance between two feature sets [N, d] (float64 mean and covariance)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    stats = [(np.mean(f, axis=0), np.cov(f, rowvar=False)) for f in (real.double().cpu().numpy(),
                                                                       fake.double().cpu().numpy())]
    return float(calculate_frechet_distance(*stats[0], *stats[1]))
