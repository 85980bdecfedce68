"""Editability: how well inverted codes behave under latent edits, and how near they stay to the generator's W.

- `lec`: latent editing consistency (e4e, Tov et al. 2021): x -> E(x) = w, edit w + αd, regenerate, re-encode,
  edit back by -αd; the distance to w (the Frobenius norm over layers and channels, per image), averaged over the
  images between the 1st and 99th percentiles, as the official script (which trims batch means instead).
- `WDistribution`: closeness to W — spread of a W+ code over its layers, distance to `latent_avg`, and the
  P-norm (Zhu et al. 2020): codes mapped through the inverse of the mapping network's last leaky ReLU, whitened by
  the PCA of sampled codes; mean squared whitened coordinate, so the generator's own samples score 1.
- `edit_quality`: attribute change per unit α along a direction, change of the other attributes, identity kept.
- `fid_kid`: FID and KID (torchmetrics) of image sets against real images, on any feature net.
- `attribute_fid`: the attribute-conditioned editing FID (StyleFeatureEditor's `scripts/fid_calculation.py`): edits
  that add an attribute against the real images that have it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganinv.editing import edit
from ganinv.inversion import Inversion

Invert = Callable[[Tensor], Inversion]  # images -> inversions (W+ codes [B, n_latent, dim] and per-image state)
Reconstruct = Callable[[Inversion], Tensor]  # inversions -> images


def trimmed_mean(values: Tensor, low: float = 1.0, high: float = 99.0) -> float:
    """Mean of the values between the `low`th and `high`th percentiles (both kept, as numpy's lower / higher)."""
    v = values.double().flatten().sort().values
    if len(v) == 0:
        return float("nan")
    lo = v[int(torch.floor(torch.tensor(low / 100 * (len(v) - 1))))]
    hi = v[int(torch.ceil(torch.tensor(high / 100 * (len(v) - 1))))]
    return float(v[(v >= lo) & (v <= hi)].mean())


@torch.no_grad()
def lec_distances(invert: Invert, reconstruct: Reconstruct, images: Tensor, direction: Tensor,
                  alpha: float = 3.0, layers: Sequence[int] | None = None, codes: Inversion | None = None,
                  edited: Tensor | None = None) -> Tensor:
    """Per-image ‖E(G(E(x) + αd)) − αd − E(x)‖ over layers and channels [B] (of the codes of the inversions E
    returns; the edit keeps their per-image state); pass `codes` = E(x) and `edited` = G(E(x) + αd) where they are
    already computed."""
    codes = invert(images) if codes is None else codes
    edited = reconstruct(edit(codes, direction, alpha, layers)) if edited is None else edited
    back = edit(invert(edited.clamp(-1, 1)), direction, -alpha, layers)
    return (back.codes - codes.codes).flatten(1).norm(dim=1)


def lec(invert: Invert, reconstruct: Reconstruct, images: Tensor, direction: Tensor, alpha: float = 3.0,
        layers: Sequence[int] | None = None) -> float:
    """LEC of one direction on `images` (lower is better; 0 for an encoder that inverts the generator exactly)."""
    return trimmed_mean(lec_distances(invert, reconstruct, images, direction, alpha, layers))


class WDistribution(nn.Module):
    """The generator's W as a Gaussian after undoing the mapping's last leaky ReLU (slope 0.2 -> 5), from
    `n_samples` mapped z; `p_norm(codes)` is the mean squared whitened coordinate (1 on W samples)."""

    def __init__(self, generator: nn.Module, n_samples: int = 20_000, seed: int = 0, batch: int = 1000):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        like = next(generator.parameters())  # samples in the generator's device and precision (float64 parity runs)
        with torch.no_grad():
            ws = torch.cat([generator.get_latent(torch.randn(min(batch, n_samples - i), generator.style_dim,
                                                             generator=g).to(like)).cpu()
                            for i in range(0, n_samples, batch)])
        x = self.unrelu(ws.double())
        mean = x.mean(0)
        eigval, eigvec = torch.linalg.eigh(torch.cov((x - mean).T))
        self.register_buffer("mean", mean.float())
        self.register_buffer("whiten", (eigvec / eigval.clamp_min(1e-12).sqrt()).float())  # [dim, dim]
        self.register_buffer("latent_avg", generator.latent_avg.detach().float().reshape(-1).cpu())

    @staticmethod
    def unrelu(w: Tensor) -> Tensor:
        return F.leaky_relu(w, 5.0)

    def p_norm(self, codes: Tensor) -> Tensor:
        """Per code [B] (W+ codes: averaged over layers)."""
        z = (self.unrelu(codes.float()) - self.mean.to(codes.device)) @ self.whiten.to(codes.device)
        return z.pow(2).mean(-1).reshape(len(codes), -1).mean(1)

    def closeness(self, codes: Tensor) -> dict[str, float]:
        """`w_layer_spread`: mean distance of each layer's code to the code's mean over layers (0 in W);
        `w_avg_distance`: mean distance of the layers' codes to `latent_avg`; `p_norm` (1 for W samples)."""
        codes = codes.float().reshape(len(codes), -1, codes.shape[-1])
        spread = (codes - codes.mean(1, keepdim=True)).norm(dim=-1).mean()
        dist = (codes - self.latent_avg.to(codes.device)).norm(dim=-1).mean()
        return {"w_layer_spread": float(spread), "w_avg_distance": float(dist),
                "p_norm": float(self.p_norm(codes).mean())}


@torch.no_grad()
def edit_quality(base: Tensor, plus: Tensor, minus: Tensor, alpha: float, attributes: Callable[[Tensor], Tensor],
                 target: int, identity: nn.Module | None = None,
                 keep: Sequence[int] | None = None) -> dict[str, Tensor]:
    """Per image, from the unedited reconstructions `base` and the edits by +α and -α along a direction;
    `attributes(images) -> [B, A]` on a common scale.

    `edit_gain`: change of attribute `target` per unit α (from -α to +α); `edit_others`: mean absolute change
    per unit α of the attributes in `keep` (default: all others); `edit_id`: identity similarity of the two edits
    to `base` (when `identity` is given)."""
    a_plus, a_minus = attributes(plus.clamp(-1, 1)), attributes(minus.clamp(-1, 1))
    others = [i for i in (keep if keep is not None else range(a_plus.shape[1])) if i != target]
    out = {"edit_gain": (a_plus[:, target] - a_minus[:, target]) / (2 * alpha),
           "edit_others": (a_plus[:, others] - a_minus[:, others]).abs().mean(1) / (2 * alpha)}
    if identity is not None:
        out["edit_id"] = (identity.similarity(plus.clamp(-1, 1), base) + identity.similarity(minus.clamp(-1, 1),
                                                                                            base)) / 2
    return out


@torch.no_grad()
def fid_kid(real: Tensor, fakes: dict[str, Tensor], features: nn.Module, batch: int = 250,
            kid_subset: int = 100) -> dict[str, float]:
    """`fid_<name>` and `kid_<name>` of each image set in `fakes` against `real` (all in [-1, 1]) on `features`
    (an nn.Module taking [0, 1] images and returning [N, d]); real statistics are computed once. The sets are
    whole in this process, so nothing is synced across DDP ranks; KID's random subsets come from a fixed seed,
    so that the result depends on the images alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return _fid_kid(real, fakes, features, batch, kid_subset)


def _fid_kid(real: Tensor, fakes: dict[str, Tensor], features: nn.Module, batch: int, kid_subset: int) -> dict:
    from .pytorch_fid import PytorchFID

    if isinstance(features, PytorchFID):  # pytorch-fid's FID of the images as files, as its users report (no KID)
        return _pytorch_fid(real, fakes, features, batch)
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(real), *(len(f) for f in fakes.values()))
    subset = max(2, min(kid_subset, n))
    fid = FrechetInceptionDistance(feature=features, normalize=True, reset_real_features=False,
                                   sync_on_compute=False)
    with warnings.catch_warnings():  # its memory warning: the image sets here are small
        warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save")
        kid = KernelInceptionDistance(feature=features, normalize=True, reset_real_features=False, subset_size=subset,
                                      sync_on_compute=False)
    for m in (fid, kid):
        m.to(real.device)
    for i in range(0, len(real), batch):
        x = real[i : i + batch].float().clamp(-1, 1) * 0.5 + 0.5
        fid.update(x, real=True)
        kid.update(x, real=True)
    out = {}
    for name, fake in fakes.items():
        fid.reset()
        kid.reset()
        for i in range(0, len(fake), batch):
            x = fake[i : i + batch].float().clamp(-1, 1) * 0.5 + 0.5
            fid.update(x, real=False)
            kid.update(x, real=False)
        out[f"fid_{name}"] = float(fid.compute())
        out[f"kid_{name}"] = float(kid.compute()[0])
    return out


def attribute_fid(real: Tensor, plus: dict[str, Tensor], minus: dict[str, Tensor], labels: dict[str, Tensor],
                  features: nn.Module, minimum: int = 2) -> dict[str, float]:
    """Per direction named as an attribute of `labels` (name -> [N] bool, whether each real image has it), as
    StyleFeatureEditor's `fid_calculation.py` measures an edit: the +α edits of the images without the attribute
    against the real images with it (`fid_attr_<name>_add`), and the −α edits of the images with it against the real
    images without it (`fid_attr_<name>_remove`, their `--attr_is_reversed`); `fid_attr` is their mean. A pair is
    left out when either side has fewer than `minimum` images."""
    out = {}
    for name, has in labels.items():
        if name not in plus:
            continue
        has = has.to(real.device).bool()
        for kind, fakes, source, target in (("add", plus[name], ~has, has), ("remove", minus[name], has, ~has)):
            if int(source.sum()) >= minimum and int(target.sum()) >= minimum:
                out[f"fid_attr_{name}_{kind}"] = fid_kid(real[target], {"x": fakes[source]}, features)["fid_x"]
    if out:
        out["fid_attr"] = sum(out.values()) / len(out)
    return out


def _pytorch_fid(real: Tensor, fakes: dict[str, Tensor], net: nn.Module, batch: int) -> dict[str, float]:
    from .pytorch_fid import frechet_distance
    from .reading import saved

    def features(images: Tensor) -> Tensor:
        return torch.cat([net(images[i : i + batch].float().clamp(-1, 1) * 0.5 + 0.5)
                          for i in range(0, len(images), batch)])

    reference = features(real)
    return {f"fid_{name}": frechet_distance(reference, features(saved(fake))) for name, fake in fakes.items()}


def inception_features() -> nn.Module:
    """torchmetrics' FID Inception-v3 (2048-d pool features), from the user's torch hub cache."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3

        return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    except (ImportError, ModuleNotFoundError, OSError, RuntimeError) as err:
        from ganinv.checkpoints import CheckpointError

        raise CheckpointError(
            None, "FID / KID on real images need torchmetrics' Inception-v3 (pip install torch-fidelity; its weights "
            "file pt_inception-2015-12-05-6726825d.pth in $TORCH_HOME/hub/checkpoints, fetched once online); "
            f"or set fid=none ({type(err).__name__}: {err})") from None
