"""`EvaluationSuite`: every distortion and editability metric of one inverter on one image set, as a flat dict.

Only the inference API is used: `invert(images) -> Inversion` and `reconstruct(inversion) -> images` (a method's
`invert` and `reconstruct`, or any pair of functions, e.g. a method followed by a refiner)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from rich.progress import Progress
from torch import Tensor, nn

from ganinv.distributed import gather, shard
from ganinv.editing import Directions, edit, interfacegan, load_directions
from ganinv.inversion import Inversion
from ganinv.losses import NormalizedStyleSpace

from .distortion import DistortionMetrics
from .editability import WDistribution, attribute_fid, edit_quality, fid_kid, lec_distances, trimmed_mean
from .inverting import Inverted, invert_images
from .pytorch_fid import TEXT as PYTORCH_FID

TOY_EDITS = ("smile", "age", "yaw", "eyes_open")  # editable toy attributes with InterFaceGAN directions
# The features FID / KID compare, and the card's words for each: the toy perceptual net's, torchmetrics'
# Inception-v3, pytorch-fid's (FID only, as the published tables), none.
FID = {"toy": "the toy perceptual net's features (torchmetrics' FID and KID); reconstructions and edits against the "
              "evaluated targets",
       "inception": "torchmetrics' Inception-v3 (torch-fidelity's FID weights, 2048-d; FID and KID); reconstructions "
                    "and edits against the evaluated targets",
       "pytorch_fid": PYTORCH_FID,
       "none": "not computed"}


class EvaluationSuite:
    """`distortion` always; the rest where given: `w_distribution` (closeness to W), `style_space` (LSAP's SND),
    `directions` with `alpha`
    (LEC on the first `lec_images`; with `attributes(images) -> [B, A]` named `attribute_names`, edit quality
    along each direction whose name is an attribute), `identity` (identity kept by edits), `fid_features`
    (FID / KID of reconstructions and of edits against the real images). Images are scored in float32, whatever
    precision the inverter computes in."""

    def __init__(self, distortion: DistortionMetrics, w_distribution: WDistribution | None = None,
                 directions: Directions | None = None, alpha: float = 3.0,
                 attributes: Callable[[Tensor], Tensor] | None = None, attribute_names: Sequence[str] | None = None,
                 identity: nn.Module | None = None, fid_features: nn.Module | None = None, lec_images: int = 64,
                 batch_size: int = 16, style_space: NormalizedStyleSpace | None = None, fid: str | None = None):
        self.distortion, self.w_distribution, self.directions = distortion, w_distribution, directions
        self.fid, self.targets_px = fid, None
        self.style_space = style_space
        self.alpha, self.attributes, self.identity, self.fid_features = float(alpha), attributes, identity, fid_features
        self.attribute_names = list(attribute_names or [])
        self.lec_images, self.batch_size = int(lec_images), int(batch_size)
        self.labelled: list[str] = []  # the attributes the last evaluation's labels named

    def to(self, device: torch.device | str) -> EvaluationSuite:
        """Its networks on `device`."""
        for name in ("distortion", "w_distribution", "attributes", "identity", "fid_features"):
            if isinstance(getattr(self, name), nn.Module):
                setattr(self, name, getattr(self, name).to(device))
        return self

    def _batches(self, n: int) -> list[slice]:
        return [slice(i, min(i + self.batch_size, n)) for i in range(0, n, self.batch_size)]

    def evaluate(self, invert: Callable[[Tensor], Inversion], reconstruct: Callable[[Inversion], Tensor],
                 images: Tensor, true_codes: Tensor | None = None, show: bool = True, targets: Tensor | None = None,
                 inverted: Inverted | None = None, labels: dict[str, Tensor] | None = None) -> tuple[dict, dict]:
        """(metrics, timing) of inverting `images` [N, C, H, W] (the method's inputs, in [-1, 1]) and scoring the
        reconstructions against `targets` (default: `images`). `inverted`: `images` already inverted
        (`invert_images`). Edits move the inversions' codes and keep their per-image state. `true_codes`
        (generator samples) adds `code_mse`; `labels` (attribute name -> [N] bool: which images have it; the
        renderer's on the toy domain) adds the attribute-conditioned editing FID (`attribute_fid`). LEC, which
        re-inverts edited images, needs RGB inputs of the generator's domain: it is left out for other inputs.

        Under DDP every rank takes the same arguments and returns the same result: each inverts, scores and edits
        its own share of the images (whole batches, no padding, no image twice), the per-image results are
        gathered, and every metric is that of the whole set (FID / KID on the gathered sets); `seconds` add up
        every rank's."""
        targets = images if targets is None else targets
        self.labelled = sorted(labels or {})
        self.targets_px = tuple(targets.shape[-2:])
        n, mine = len(images), shard(len(images), self.batch_size)
        own = slice(mine.start, mine.stop)
        self.distortion.reset()
        batches = -(-len(mine) // self.batch_size)
        steps = batches * (1 + (len(self.directions.names) if self.directions else 0))
        with Progress(disable=not show, transient=True) as bar:
            task = bar.add_task("evaluating", total=steps)
            if inverted is None:
                inverted = invert_images(invert, reconstruct, images, self.batch_size,
                                         advance=lambda: bar.advance(task))
            else:
                bar.advance(task, batches)
            codes, recs = inverted.inversion[own], inverted.recs[own].float()
            for sl in self._batches(len(mine)):
                self.distortion.update(recs[sl], targets[own][sl])
            metrics = self.distortion.compute()  # every rank's sums
            lec = invert if images.shape[1] == 3 and images.shape == targets.shape else None
            plus, minus = self._edits(lec, reconstruct, images[own], codes, recs, metrics, bar, task, mine.start,
                                      keep_minus=bool(labels) and self.fid_features is not None)
            all_codes, all_recs = inverted.inversion.codes, inverted.recs.float()
            if len(all_codes) != n:
                raise RuntimeError(f"scored {len(all_codes)} images of {n}: the processes' shares do not add up")
            if true_codes is not None:
                metrics["code_mse"] = float((all_codes - true_codes.to(all_codes)).pow(2).mean())
            if self.w_distribution is not None:
                metrics.update(self.w_distribution.closeness(all_codes))
            if self.style_space is not None:
                metrics["snd"] = float(self.style_space.distance(all_codes).mean())
        if self.fid_features is not None:
            fakes = {"rec": all_recs, **({"edit": torch.cat(list(plus.values()))} if plus else {})}
            metrics.update(fid_kid(targets, fakes, self.fid_features))
            if labels:
                metrics.update(attribute_fid(targets, plus, minus, labels, self.fid_features))
        timing = {"images": n, "seconds_per_image": inverted.seconds / n,
                  "images_per_second": n / max(inverted.seconds, 1e-9)}
        return metrics, timing

    def protocol(self) -> dict:
        """How the metrics were measured: the distortion's sizes and nets, the edits' strength and directions."""
        out = {**self.distortion.protocol(), "editability": f"alpha {self.alpha}, directions "
               f"{self.directions.names if self.directions else None}"}
        if self.labelled and self.fid_features is not None:
            out["fid_attr"] = (f"StyleFeatureEditor's editing FID (fid_calculation.py) per direction: the +alpha "
                               "edits of the held-out images without the attribute against the held-out real images "
                               "with it (add), the -alpha edits of those with it against those without (remove), on "
                               "the FID features of the card; present: at or above the middle of its range (the "
                               f"renderer's value on the toy domain); attributes {', '.join(self.labelled)}")
        if self.style_space is not None:
            out["snd"] = (f"LSAP's SND: 1 - cosine of each W+ layer's style vector to the mean unit style vector of "
                          f"{self.style_space.n_samples} mapped z (seed 0), averaged over layers and images")
        return out

    def card(self) -> dict[str, str]:
        """The metric card of the last evaluation: the distortion metrics' (`DistortionMetrics.card`), the targets'
        size and FID's features and reference set."""
        card = self.distortion.card()
        if self.targets_px is not None:
            card["targets"] = f"{self.targets_px[0]} x {self.targets_px[1]} px as the data module gives them"
        card["fid"] = FID["none"] if self.fid_features is None else FID.get(str(self.fid), str(self.fid))
        return card

    def _edits(self, invert, reconstruct, images, codes, recs, metrics, bar, task, first: int = 0,
               keep_minus: bool = False) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Per direction: the edits by ±α, LEC on the first `lec_images` of the whole set (re-inverting the +α
        edits with `invert`, unless None) and, with attributes, edit quality; returns the +α edits of the whole
        set per direction (for FID) and, if `keep_minus`, the −α edits (else none). `images` are this rank's
        share, from index `first` of the set; per-image results are gathered from every rank before they are
        averaged."""
        if self.directions is None:
            return {}, {}
        edited, undone, layers = {}, {}, self.directions.layers
        n_lec = min(self.lec_images, first + len(images)) - first  # this share's images among the first
        for name in self.directions.names:
            d = self.directions[name]
            plus, minus, lec, quality = [], [], [recs.new_zeros(0)], {}
            for sl in self._batches(len(images)):
                with torch.no_grad():
                    p = reconstruct(edit(codes[sl], d, self.alpha, layers)).float().clamp(-1, 1)
                    m = reconstruct(edit(codes[sl], d, -self.alpha, layers)).float().clamp(-1, 1)
                plus.append(p)
                if keep_minus:
                    minus.append(m)
                if invert is not None and sl.start < n_lec:
                    k = min(sl.stop, n_lec) - sl.start
                    lec.append(lec_distances(invert, reconstruct, images[sl][:k], d, self.alpha, layers,
                                             codes[sl][:k], p[:k]).float())  # every rank's in one dtype
                if self.attributes is not None and name in self.attribute_names:
                    for key, v in edit_quality(recs[sl], p, m, self.alpha, self.attributes,
                                               self.attribute_names.index(name), self.identity).items():
                        quality.setdefault(key, []).append(v.float())
                bar.advance(task)
            lec = gather(torch.cat(lec)) if invert is not None else lec[0]
            if len(lec):
                metrics[f"lec_{name}"] = trimmed_mean(lec)
            metrics.update({f"{key}_{name}": float(gather(torch.cat(v)).nanmean()) for key, v in quality.items()})
            edited[name] = gather(torch.cat(plus))
            if keep_minus:
                undone[name] = gather(torch.cat(minus))
        for key in ("lec", "edit_gain", "edit_others", "edit_id"):
            vals = [metrics[f"{key}_{n}"] for n in self.directions.names if f"{key}_{n}" in metrics]
            if vals:
                metrics[key] = sum(vals) / len(vals)
        return edited, undone


def toy_labels(attrs: Tensor) -> dict[str, Tensor]:
    """Which toy renders have each editable attribute (`attrs`: the renderer's, [N, NUM_ATTRIBUTES]): its value at
    or above the middle of its range — exact, the renderer drew it."""
    from ganinv.toy.attributes import EDITABLE, NAMES, normalise

    scaled = normalise(attrs.float())
    return {NAMES[i]: scaled[:, i] >= 0.5 for i in EDITABLE}


def build_suite(generator: nn.Module, distortion: DistortionMetrics, editability: Mapping, fid: str = "toy",
                batch_size: int = 16) -> EvaluationSuite:
    """The suite of the `evaluation` config group (conf/evaluation/default.yaml: `editability.*` and `fid`), with
    `distortion` built from the `metrics` group, for inverters of `generator`: what `ganinv-eval` and the
    training's metrics callback measure, so a metric name means one protocol everywhere."""
    from hydra.utils import instantiate

    from ganinv.toy import NAMES, AttributePredictor
    from ganinv.toy.generator import PerceptualFeatures

    from .editability import inception_features
    from .pytorch_fid import PytorchFID

    e, toy = editability, is_toy_generator(generator)
    fid = distortion.fid if distortion.fid is not None else fid  # a published protocol's own FID
    if str(fid) not in FID:
        raise ValueError(f"fid={fid!r} is not one of {', '.join(FID)}.")
    directions = (load_directions(e["directions"], generator) if e.get("directions") else
                  toy_directions(generator) if toy else None)
    attributes, names = None, []
    if e.get("attributes") == "toy" and toy:  # the toy attribute net only knows the toy generator's faces
        attributes, names = AttributePredictor(list(NAMES), normalised=True).eval(), list(NAMES)
    elif e.get("attributes") not in (None, "toy"):
        attributes, names = instantiate(e["attributes"]).eval(), list(e.get("attribute_names") or [])
    features = {"toy": PerceptualFeatures, "inception": inception_features, "pytorch_fid": PytorchFID,
                "none": lambda: None}[str(fid)]()
    return EvaluationSuite(distortion, WDistribution(generator, int(e["p_norm_samples"])), directions,
                           float(e["alpha"]), attributes, names, distortion.identity, features, int(e["lec_images"]),
                           int(batch_size), NormalizedStyleSpace(generator, int(e["snd_samples"])), str(fid))


def is_toy_generator(generator: nn.Module) -> bool:
    """Whether `generator` is the committed toy StyleGAN2 (by content hash, in any precision), the domain of the
    toy nets."""
    from ganinv.toy.nets import ASSETS

    return float32_hash(generator) == load_directions(ASSETS / "interfacegan.pt").generator_hash


def float32_hash(generator: nn.Module) -> str:
    """The content hash of `generator` as saved in float32 (a float64 parity run's generator is the same one)."""
    import copy

    from ganinv.checkpoints import state_hash

    if all(t.dtype != torch.float64 for t in generator.state_dict().values()):
        return state_hash(generator)
    return state_hash(copy.deepcopy(generator).float())


def toy_directions(generator: nn.Module, edits: Sequence[str] = TOY_EDITS, n_samples: int = 10_000) -> Directions:
    """InterFaceGAN directions of toy attributes: the committed file (ganinv/toy/assets/interfacegan.pt, made by
    `ganinv-directions kind=interfacegan 'attribute=[smile,age,yaw,eyes_open]'`) when it was computed on this
    generator and holds them all, else computed now on `n_samples` samples."""
    from ganinv.toy import AttributePredictor
    from ganinv.toy.nets import ASSETS

    path = ASSETS / "interfacegan.pt"
    if path.exists():
        found = load_directions(path)
        if found.generator_hash == float32_hash(generator) and set(edits) <= set(found.names):
            keep = [found.names.index(e) for e in edits]
            return Directions(found.vectors[keep], list(edits), found.method, found.scores[keep], found.layers,
                              found.generator_hash, found.meta)
    return interfacegan(generator, AttributePredictor(list(edits)).eval(), list(edits), n_samples)
