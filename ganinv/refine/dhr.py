"""Domain-Specific Hybrid Refinement (Cao et al. 2023, "What decreases editing capability?"), as GAN Inverter's
`inference/dhr_infer.py` runs it after an embedding method (its benchmark's best fidelity).

1. Domain-specific segmentation: a coarse W optimisation from the average code (40 steps) leaves a distortion map
   (the perceptual net's per-layer maps); the image is cut into superpixels (SLIC, 200 segments, compactness 30,
   sigma 1), and a superpixel is in-domain when its summed per-layer distortion is under the threshold of the face
   part that covers most of it (skin θ1 0.7, eyes / brows / nose / mouth θ2 0.8, other parts 0.6); background and
   clothes are never in-domain (the face parser's background classes).
2. Hybrid modulation, from the embedding's codes, which stay where they are (edits move them): the generator's
   weights are tuned on the in-domain part (weight modulation, Adam 1.5e-3, the first 50 steps) and the features
   leaving the 128-px block (`dhr_feature_idx` 11 of a 1024-px generator; a smaller generator's half-size block)
   are replaced on the out-of-domain part by a free feature map (feature modulation, Adam 0.09, 100 steps), each
   with L2 + perceptual terms restricted to its part. Each image keeps its weight offsets and its masked feature
   map; an edit moves the codes and keeps both.

Where ganinv differs: the segmentation's parser is the toy domain's (`ganinv.toy.ToyFaceParser`) or, for real
photos, BiSeNet with face-parsing.PyTorch's released weights (`refine.parser=bisenet`); GAN Inverter runs FaRL's
CelebAMask parser through pyfacer, released as TorchScript (code in the file, which ganinv never runs): BiSeNet's
CelebAMask-HQ classes take the thresholds GAN Inverter gives FaRL's same-named ones (`score_thr`: the face θ1; ears,
brows, eyes, nose, mouth and lips θ2; neck, hair and glasses 0.6; background, clothes, hat, earrings and necklace
never in-domain); both stages use the `loss` group's perceptual net (GAN Inverter: LPIPS VGG for the
coarse W optimisation, AlexNet for the refinement); the coarse optimisation is `optimize_codes` (W, noise fitted,
constant rate: no rosinality learning-rate ramp or latent noise); a superpixel's distortion averages each layer's
map brought to the image's size (GAN Inverter brings the superpixel down to each layer's size).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import Tensor

from ganinv.configs import yaml_defaults
from ganinv.data.transforms import resize
from ganinv.inversion import Inversion
from ganinv.methods.base import match_size

from .base import Refiner
from .face_parsing import face_parser
from .optimise import optimize_codes
from .pti import synthesis_parameters

# The parsers' labels (ganinv.toy.LABELS, face-parsing.PyTorch's CelebAMask-HQ classes) as DHR's kinds: out of
# the face (never in-domain), skin (θ1), the inner parts (θ2), the rest (the third threshold).
KINDS = {"background": "out", "clothes": "out", "skin": "skin", "nose": "parts", "eyes": "parts",
         "brows": "parts", "mouth": "parts", "hair": "other", "glasses": "other",
         **dict.fromkeys(("cloth", "hat", "ear_r", "neck_l"), "out"),
         **dict.fromkeys(("l_brow", "r_brow", "l_eye", "r_eye", "l_ear", "r_ear", "u_lip", "l_lip"), "parts"),
         **dict.fromkeys(("neck", "eye_g"), "other")}


class DomainSpecificHybridRefinement(Refiner):
    """DHR after any method; `parser`: the face parser that tells the face's parts from the background (toy, or
    bisenet with `parser_weights`)."""

    NAME = "DHR"
    DEFAULTS = yaml_defaults("refine", "dhr")
    FILES = ("parser_weights",)

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        o, g = self.options, self.module.generator
        from ganinv.metrics.suite import is_toy_generator

        if o["parser"] == "toy" and not is_toy_generator(g):
            raise ValueError("refine=dhr with refine.parser=toy segments toy faces: this generator is not the toy "
                             "one; for real photos pass refine.parser=bisenet refine.parser_weights=<79999_iter.pth>")
        if self.perceptual_net is None or not hasattr(self.perceptual_net, "maps"):
            raise ValueError("DHR weighs its losses with a perceptual net's spatial maps: choose loss/perceptual="
                             "lpips_alex (faces) or the toy net (loss=toy_optim)")
        r = self.resolution()
        if r not in [2 ** k for k in range(2, int(math.log2(g.size)))]:
            raise ValueError(f"refine.feature_resolution={r}: the generator's blocks end at 4 ... {g.size // 2} px")
        self.parser = face_parser(o["parser"], o["parser_weights"])
        self.kinds = [KINDS[name] for name in self.parser.labels]

    def to(self, device):
        super().to(device)
        self.parser = self.parser.to(device)
        return self

    def resolution(self) -> int:
        """The features DHR modulates: `feature_resolution`, or the 128-px block's output (GAN Inverter's
        `dhr_feature_idx` 11 on a 1024-px generator), the half-size block's on a smaller generator: the mask keeps
        the official resolution where it can (on the 64-px toy generator an eighth of its size would be an 8 x 8
        mask, a face in a few cells)."""
        return int(self.options["feature_resolution"] or min(128, self.module.generator.size // 2))

    def codes(self, inversion: Inversion, images: Tensor) -> Inversion:
        """DHR never moves the codes."""
        return inversion

    def refine(self, inversion: Inversion, images: Tensor) -> Inversion:
        o, m = self.options, self.module
        y = resize(images.to(m.latent_avg), m.generator.size)
        mask = self.segment(y)
        r = self.resolution()
        small = F.adaptive_avg_pool2d(mask, r)
        feature = block_features(m, inversion, r).requires_grad_(True)
        start = inversion.offsets or {}
        offsets = {n: (start[n].to(y) if n in start else y.new_zeros(len(y), *p.shape)).clone().requires_grad_(True)
                   for n, p in synthesis_parameters(m.generator).items()}
        opt_feature = torch.optim.Adam([feature], lr=float(o["feature_lr"]))
        opt_weights = torch.optim.Adam(offsets.values(), lr=float(o["weight_lr"]))
        with torch.enable_grad(), Progress(transient=True, disable=not self.show) as bar:
            task = bar.add_task("DHR", total=int(o["feature_steps"]))
            for step in range(int(o["feature_steps"])):
                tuned = inversion.replace(offsets=offsets, features={r: keep_add(small, feature)})
                y_hat = match_size(m.reconstruct(tuned), y)
                out_loss, in_loss = self.part_losses(y_hat, y, mask)
                opt_feature.zero_grad(set_to_none=True)
                feature.grad, = torch.autograd.grad(out_loss.sum(), feature, retain_graph=True)
                if step < int(o["weight_steps"]):  # both gradients at the same point, as the official steps
                    grads = torch.autograd.grad(in_loss.sum(), list(offsets.values()))
                    for v, grad in zip(offsets.values(), grads, strict=True):
                        v.grad = grad
                    opt_weights.step()
                opt_feature.step()
                bar.advance(task)
        return inversion.replace(offsets={n: v.detach() for n, v in offsets.items()},
                                 features={r: keep_add(small, feature.detach())})

    def part_losses(self, y_hat: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Per image [B]: L2 + perceptual on the out-of-domain part (what the features learn) and on the in-domain
        part (what the weights learn), each the mean over its part (each layer's map masked at its size)."""
        o = self.options

        def part(weight: Tensor) -> Tensor:
            l2 = (F.mse_loss(y_hat, y, reduction="none") * weight).sum((1, 2, 3)) / (
                3 * weight.sum((1, 2, 3)).clamp_min(1e-8))
            per = sum((d * (w := F.interpolate(weight, size=d.shape[-2:], mode="nearest"))).sum((1, 2, 3))
                      / w.sum((1, 2, 3)).clamp_min(1e-8) for d in self.perceptual_net.maps(y_hat, y))
            return o["l2"] * l2 + o["perceptual"] * per

        return part(1 - mask), part(mask)

    def segment(self, y: Tensor) -> Tensor:
        """The in-domain mask [B, 1, H, W] (1 in-domain): superpixels whose coarse-inversion distortion is under
        their part's threshold, inside the face."""
        o, m = self.options, self.module
        start = Inversion(m.latent_avg.expand(len(y), m.n_latent, -1).clone())
        coarse = optimize_codes(m, y, start, int(o["coarse_steps"]), float(o["coarse_lr"]),
                                {"l2": 0.0, "perceptual": 1.0}, self.distance, "w", noise=True)
        with torch.no_grad():
            maps = self.perceptual_net.maps(match_size(m.reconstruct(coarse), y), y)
            distortion = sum(F.interpolate(d, size=y.shape[-2:], mode="nearest") for d in maps)[:, 0]
            labels = self.parser(y)
        thresholds = {"out": -math.inf, "skin": o["theta_skin"], "parts": o["theta_parts"],
                      "other": o["theta_other"]}
        per_label = torch.tensor([thresholds[k] for k in self.kinds], dtype=torch.float64)
        return torch.stack([self._one(img, d, lab, per_label) for img, d, lab in zip(y, distortion, labels)
                            ])[:, None].to(y)

    def _one(self, image: Tensor, distortion: Tensor, labels: Tensor, per_label: Tensor) -> Tensor:
        """One image's in-domain mask [H, W]."""
        from skimage.segmentation import slic

        o = self.options
        pixels = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        sp = torch.from_numpy(slic(pixels, n_segments=int(o["superpixels"]), compactness=float(o["compactness"]),
                                   sigma=1, start_label=0).astype(np.int64)).flatten()
        n, lab = int(sp.max()) + 1, labels.cpu().flatten()
        count = torch.bincount(sp, minlength=n).double()
        mean = torch.bincount(sp, weights=distortion.cpu().double().flatten(), minlength=n) / count.clamp_min(1)
        votes = torch.bincount(sp * len(per_label) + lab, minlength=n * len(per_label)).view(n, len(per_label))
        inside = mean < per_label[votes.argmax(1)]  # each superpixel against its main part's threshold
        keep = inside[sp] & (per_label[lab] > -math.inf)  # never the background's pixels
        return keep.view(labels.shape).float()


def keep_add(mask: Tensor, feature: Tensor) -> Tensor:
    """The generator's `features` entry that keeps its own features under `mask` and puts `feature` on the rest:
    features · mask + feature · (1 − mask)."""
    return torch.cat([mask, feature * (1 - mask)], 1)


def block_features(module, inversion: Inversion, resolution: int) -> Tensor:
    """The generator's features leaving its `resolution` block [B, C, r, r] for `inversion` (per-image weight
    offsets applied one image at a time)."""
    g = module.generator
    block = g.conv1 if resolution == 4 else g.convs[2 * (int(math.log2(resolution)) - 3) + 1]
    out: list[Tensor] = []
    handle = block.register_forward_hook(lambda _mod, _args, result: out.append(result.detach()))
    try:
        with torch.no_grad():
            if not inversion.offsets:
                module.reconstruct(inversion)
            for i in range(len(inversion)) if inversion.offsets else ():
                one = inversion[i]
                with applied(g, one.offsets):
                    module.reconstruct(one.replace(offsets=None))
    finally:
        handle.remove()
    return torch.cat(out).to(module.latent_avg)


@contextlib.contextmanager
def applied(generator: torch.nn.Module, offsets: dict[str, Tensor]):
    """`generator` with one image's weight offsets added to its parameters, restored exactly afterwards."""
    params = dict(generator.named_parameters())
    kept = {k: params[k].detach().clone() for k in offsets}
    with torch.no_grad():
        for k, v in offsets.items():
            params[k].add_(v[0].to(params[k]))
    try:
        yield generator
    finally:
        with torch.no_grad():
            for k, v in kept.items():
                params[k].copy_(v)
