"""The published tables' metrics, as their scripts compute them (`metrics=ganinverter`, `psp`, `sfe`).

Each preset is read off its scripts: which images are scored (reconstructions saved as 8-bit files, truncated;
targets as the data set's files), how they are resized (PIL on the files, or torch on tensors), the value range
of MSE, the PSNR formula, the LPIPS backbone, MS-SSIM's implementation and size, the identity network and crop,
and FID's features (`metrics.fid`: pytorch-fid, as those scripts; none for pSp, whose scripts have no FID). Every
choice is on the record's metric card.

- GAN Inverter (`scripts/test.py`, `scripts/calc_id_loss.py`, pytorch-fid): reconstructions truncated to 8 bits
  (`float2uint2float`) then resized to 256 by torchvision on tensors (antialiased bilinear); targets read with PIL
  `Resize((256, 256))`; MSE on [-1, 1]; PSNR = 10·log10(2 / MSE) (3.01 dB under the textbook 10·log10(4 / MSE) of
  [-1, 1] pixels); LPIPS with AlexNet (the script builds `LPIPS(net_type='alex')`; its README says VGG), per image.
- pSp (`scripts/calc_losses_on_images.py`, `calc_id_loss_parallel.py`): both saved files resized by PIL to 256
  (bilinear); L2 = MSE on [-1, 1]; LPIPS AlexNet; no PSNR, no FID. (The script drops the last incomplete batch of 4
  files in `os.listdir` order; every image is scored here.)
- StyleFeatureEditor (`metrics/metrics.py`): L2 and LPIPS AlexNet as pSp; MS-SSIM by piq on both files resized by
  PIL to 1024 (bicubic, PIL's default), data range 1; FID by pytorch-fid on the files.
- Identity in all three: CurricularFace IR-101 on MTCNN five-point crops of the saved images at their own size
  (`faces_papers`' protocol; ganinv finds the points with facenet-pytorch's MTCNN, the scripts with the pSp port of
  the same networks).
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from .distortion import DistortionMetrics, Scored, mse
from .reading import Reading

PRESETS = ("ganinverter", "psp", "sfe")
MSE_TEXT = "mean squared error on [-1, 1] pixels, per image, averaged"
LPIPS_TEXT = "LPIPS v0.1 with AlexNet (the scripts' LPIPS(net_type='alex')), per image, averaged"


def psnr_two(preds: Tensor, target: Tensor) -> Tensor:
    """GAN Inverter's PSNR: 10·log10(2 / MSE) with MSE on [-1, 1] pixels, per image."""
    return 10 * torch.log10(2 / mse(preds, target))


def piq_ms_ssim(preds: Tensor, target: Tensor) -> Tensor:
    """piq's MS-SSIM of [-1, 1] images scored on [0, 1] (data range 1), per image."""
    import piq

    return piq.multi_scale_ssim((preds + 1) / 2, (target + 1) / 2, data_range=1.0, reduction="none")


def _lpips(backbone_path: str | os.PathLike | None) -> nn.Module:
    from ganinv.losses import LPIPS

    return LPIPS("alex", backbone_path)


def _identity(identity: nn.Module | None) -> dict[str, Scored]:
    """The papers' identity metric on the saved images at their own size (`faces_papers`' network and crop)."""
    if identity is None:
        return {}
    return {identity.metric_name: Scored(identity.similarity, True, Reading(None, "truncate"), identity.protocol)}


def ganinverter(identity: nn.Module | None = None, lpips_path: str | os.PathLike | None = None, size: int = 256,
                fid: str = "pytorch_fid") -> DistortionMetrics:
    """GAN Inverter's `scripts/test.py` (MSE, PSNR, LPIPS) and `scripts/calc_id_loss.py` (identity)."""
    read = Reading(size, "truncate", preds_resize="torch", target_resize="pil")
    lpips = _lpips(lpips_path)
    scored = {"mse": Scored(mse, False, read, MSE_TEXT),
              "psnr": Scored(psnr_two, True, read, "10 log10(2/MSE), MSE on [-1, 1] pixels (GAN Inverter's "
                                                   "calculate_mse_and_psnr), per image, averaged"),
              "lpips": Scored(lpips.per_image, False, read, LPIPS_TEXT), **_identity(identity)}
    return _metrics("ganinverter", scored, identity, lpips, size, fid)


def psp(identity: nn.Module | None = None, lpips_path: str | os.PathLike | None = None, size: int = 256,
        fid: str = "none") -> DistortionMetrics:
    """pSp's `scripts/calc_losses_on_images.py` (L2, LPIPS) and `scripts/calc_id_loss_parallel.py` (identity)."""
    read = Reading(size, "truncate", preds_resize="pil", target_resize="pil")
    lpips = _lpips(lpips_path)
    scored = {"mse": Scored(mse, False, read, MSE_TEXT + " (the script's L2)"),
              "lpips": Scored(lpips.per_image, False, read, LPIPS_TEXT), **_identity(identity)}
    return _metrics("psp", scored, identity, lpips, size, fid)


def sfe(identity: nn.Module | None = None, lpips_path: str | os.PathLike | None = None, size: int = 256,
        ms_ssim_size: int = 1024, fid: str = "pytorch_fid") -> DistortionMetrics:
    """StyleFeatureEditor's `metrics/metrics.py`: L2, LPIPS, MS-SSIM (piq) and identity."""
    import importlib.util

    if importlib.util.find_spec("piq") is None:
        from ganinv.data import DataError

        raise DataError("metrics=sfe scores MS-SSIM with piq, as StyleFeatureEditor: pip install 'ganinv[published]'.")
    read = Reading(size, "truncate", preds_resize="pil", target_resize="pil")
    lpips = _lpips(lpips_path)
    scored = {"mse": Scored(mse, False, read, MSE_TEXT + " (the script's L2)"),
              "lpips": Scored(lpips.per_image, False, read, LPIPS_TEXT),
              "ms_ssim": Scored(piq_ms_ssim, True, Reading(ms_ssim_size, "truncate", "pil", "pil", "bicubic"),
                                "piq.multi_scale_ssim (Gaussian 11 px, sigma 1.5, 5 scales, data range 1), per "
                                "image, averaged"),
              **_identity(identity)}
    return _metrics("sfe", scored, identity, lpips, size, fid)


def _metrics(preset: str, scored: dict[str, Scored], identity, lpips, size: int, fid: str) -> DistortionMetrics:
    return DistortionMetrics(size, {"lpips": lpips}, identity, preset=preset, scored=scored, full_targets=True,
                             fid=fid)
