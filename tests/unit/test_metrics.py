"""Metrics against analytic values: SSIM / MS-SSIM of identical images, a known PSNR, per-image averaging and its
DDP state, LEC of an exact and of an inexact encoder, trimmed means, the P-norm of W samples, edit quality of a
linear attribute, FID / KID of equal and of shifted sets; the suite's keys on the toy domain."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganinv.editing import Directions
from ganinv.inversion import Inversion
from ganinv.metrics import (
    DistortionMetrics,
    EvaluationSuite,
    PerImageMean,
    WDistribution,
    edit_quality,
    fid_kid,
    lec,
    mse,
    psnr,
    trimmed_mean,
)


def images(n=4, size=64, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


def test_identical_images_score_perfectly():
    x = images(size=192)
    m = DistortionMetrics(size=None, image_size=192)
    m.update(x, x)
    out = m.compute()
    assert out["mse"] == 0 and out["ssim"] == pytest.approx(1, abs=1e-5)
    assert out["ms_ssim"] == pytest.approx(1, abs=1e-5)
    assert out["psnr"] == pytest.approx(100)  # the 1e-10 floor


def test_ssim_is_the_valid_region_definition_of_scikit_image():
    """Toy renders against blurred, noisy and shifted versions: scikit-image's SSIM (Gaussian weights, population
    covariance, the map cropped to where the window fits) to 1e-5; torchmetrics' padded map differs at 64 px."""
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import structural_similarity_index_measure

    from ganinv.metrics.distortion import ssim
    from ganinv.toy import render

    y = render(4, 64, 11).images
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.nn.functional.avg_pool2d(y[0:1], 3, 1, 1)[0], (y[1] + 0.1 * torch.randn(y[1].shape,
                     generator=g)).clamp(-1, 1), y[2].roll(2, -1), y[3] * 0.8])
    ours = ssim(x, y)

    def unit(t):
        return ((t + 1) / 2).permute(1, 2, 0).double().numpy()

    theirs = torch.tensor([structural_similarity(unit(a), unit(b), channel_axis=2, gaussian_weights=True, sigma=1.5,
                                                 use_sample_covariance=False, data_range=1.0) for a, b in zip(x, y)])
    assert torch.allclose(ours.double(), theirs, atol=1e-5, rtol=0), (ours, theirs)
    padded = structural_similarity_index_measure((x + 1) / 2, (y + 1) / 2, data_range=1.0, reduction="none")
    assert (padded - ours).abs().max() > 1e-3


def test_psnr_of_a_known_offset():
    """A constant offset of 0.1 on [-1, 1] is 0.05 on [0, 1]: MSE 0.0025, PSNR 10·log10(400) = 26.02 dB."""
    x = images()
    assert psnr(x + 0.1, x) == pytest.approx(torch.full((4,), 10 * math.log10(400)), abs=1e-4)
    m = DistortionMetrics(size=None)
    m.update(x + 0.1, x)
    out = m.compute()
    assert out["psnr"] == pytest.approx(26.0206, abs=1e-3) and out["psnr_dataset"] == pytest.approx(26.0206, abs=1e-3)
    assert "ms_ssim" not in out  # 64 px is below MS-SSIM's five scales


def test_per_image_mean_over_uneven_batches_and_psnr_protocols():
    """The mean is over images, not batches; PSNR per image averages above the data set's PSNR (Jensen)."""
    x, noise = images(3), torch.tensor([0.02, 0.1, 0.2]).view(3, 1, 1, 1)
    y = x + noise  # stays inside [-1, 1], so the protocol's clamp changes nothing
    m = DistortionMetrics(size=None)
    m.update(y[:1], x[:1])
    m.update(y[1:], x[1:])
    out = m.compute()
    assert out["mse"] == pytest.approx(float(mse(y, x).mean()), rel=1e-6)
    assert out["psnr"] == pytest.approx(float(psnr(y, x).mean()), rel=1e-6) and out["psnr"] > out["psnr_dataset"]
    metric = m.metrics["mse"]
    assert metric._reductions["total"] is not None and metric._reductions["count"] is not None  # summed across ranks


def test_metrics_resize_to_the_protocol_size():
    x = images(2, 64)
    m = PerImageMean(lambda a, b: torch.full((len(a),), float(a.shape[-1])), 256)
    m.update(x, x)
    assert float(m.compute()) == 256


class Linear(nn.Module):
    """A linear 'generator' [B, L, D] -> [B, 3, L, D] and its exact inverse (a perfect encoder)."""

    def __init__(self, n_latent=4, dim=8):
        super().__init__()
        self.n_latent, self.dim = n_latent, dim
        self.a = torch.randn(3, generator=torch.Generator().manual_seed(3)) + 2

    def render(self, inv):
        return inv.codes[:, None] * self.a[None, :, None, None]

    def invert(self, images):
        return Inversion(images[:, 0] / self.a[0])


def test_lec_of_an_exact_encoder_generator_pair_is_zero_and_positive_otherwise():
    g = Linear()
    codes = 0.02 * torch.randn(6, 4, 8)  # images stay inside [-1, 1], where the metric clamps
    d = torch.nn.functional.normalize(torch.randn(8), dim=0)
    assert lec(g.invert, g.render, g.render(Inversion(codes)), d, 0.1) == pytest.approx(0, abs=1e-6)
    biased = lambda x: Inversion(g.invert(x).codes * 0.9)  # noqa: E731 - shrinks codes: the edit does not come back
    assert lec(biased, g.render, g.render(Inversion(codes)), d, 0.1) > 0.01


def test_trimmed_mean_drops_the_outer_percentiles():
    v = torch.cat([torch.ones(198), torch.tensor([-1e6, 1e6])])
    assert trimmed_mean(v) == pytest.approx(1.0)


def test_p_norm_is_one_on_w_samples_and_larger_off_w(tiny_generator):
    wd = WDistribution(tiny_generator, n_samples=4000)
    z = torch.randn(500, tiny_generator.style_dim, generator=torch.Generator().manual_seed(9))
    w = tiny_generator.get_latent(z)
    codes = w[:, None].expand(-1, tiny_generator.n_latent, -1)
    close = wd.closeness(codes)
    assert close["p_norm"] == pytest.approx(1.0, rel=0.15) and close["w_layer_spread"] == pytest.approx(0, abs=1e-5)
    far = wd.closeness(codes + 0.5 * torch.randn_like(codes))
    assert far["p_norm"] > 2 * close["p_norm"] and far["w_layer_spread"] > 0.1


def test_edit_quality_of_a_linear_attribute():
    """Attribute 0 = mean of the image's first row along d: gain 1 per unit α; attribute 1 (orthogonal) still."""
    d = torch.nn.functional.normalize(torch.randn(8), dim=0)
    e = torch.nn.functional.normalize(torch.randn(8) - (torch.randn(8) @ d) * d, dim=0)
    e = torch.nn.functional.normalize(e - (e @ d) * d, dim=0)
    g = Linear(n_latent=1)
    attributes = lambda img: torch.stack([img[:, 0, 0] @ d, img[:, 0, 0] @ e], 1) / g.a[0]  # noqa: E731
    codes = 0.02 * torch.randn(5, 1, 8)
    out = edit_quality(*(g.render(Inversion(c)) for c in (codes, codes + 0.1 * d, codes - 0.1 * d)), 0.1, attributes, 0)
    assert torch.allclose(out["edit_gain"], torch.ones(5), atol=1e-5)
    assert torch.allclose(out["edit_others"], torch.zeros(5), atol=1e-5)


def test_fid_kid_are_near_zero_for_one_distribution_and_grow_with_a_shift():
    feats = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(3 * 4 * 4, 16))
    torch.manual_seed(0)
    real, same = images(300, 8, 1), images(300, 8, 2)
    out = fid_kid(real, {"same": same, "shifted": (same + 0.5).clamp(-1, 1)}, feats, kid_subset=100)
    assert out["fid_same"] < 0.2 * out["fid_shifted"] and out["kid_same"] < 0.2 * out["kid_shifted"]


def test_the_suite_reports_every_metric_with_known_codes(tiny_generator):
    """On generator samples with an identity 'encoder' that returns the true codes, distortion and LEC are 0."""
    g = tiny_generator
    w = g.get_latent(torch.randn(8, g.style_dim, generator=torch.Generator().manual_seed(4)))
    codes = w[:, None].expand(-1, g.n_latent, -1).contiguous()

    def render(inv):
        return g([inv.codes], input_is_latent=True, randomize_noise=False)[0]

    x = render(Inversion(codes)).clamp(-1, 1)
    table = {float(x[i].sum()): codes[i] for i in range(len(x))}

    def invert(imgs):  # an exact encoder: looks the images up (edits of known images are rendered on demand)
        return Inversion(torch.stack([table.get(float(im.sum()), table[min(table, key=lambda k: abs(k -
                                                                                            float(im.sum())))])
                                      for im in imgs]))

    d = Directions(torch.nn.functional.normalize(torch.randn(1, g.style_dim), dim=1), ["d"], "test", torch.ones(1))
    suite = EvaluationSuite(DistortionMetrics(size=None), WDistribution(g, 2000), d, alpha=0.0, lec_images=4,
                            batch_size=4)
    metrics, timing = suite.evaluate(invert, render, x, true_codes=codes, show=False)
    assert metrics["mse"] < 1e-10 and metrics["code_mse"] == 0 and metrics["lec"] == pytest.approx(0, abs=1e-5)
    assert {"psnr", "ssim", "p_norm", "w_layer_spread", "w_avg_distance", "lec_d"} <= set(metrics)
    assert timing["images"] == 8 and timing["seconds_per_image"] > 0


def test_the_attribute_fid_scores_edits_adding_an_attribute_against_real_images_that_have_it():
    """StyleFeatureEditor's editing FID on toy renders whose attributes the renderer knows: its pairs are the ones
    its script compares (to a Fréchet distance computed by hand on the same features), and a perfect edit (the
    renderer's own smile added) is nearer the smiling faces than the unedited faces, which are nearer than the
    edit the wrong way."""
    from scipy import linalg

    from ganinv.metrics.editability import attribute_fid
    from ganinv.metrics.suite import toy_labels
    from ganinv.toy import render
    from ganinv.toy.attributes import INDEX
    from ganinv.toy.generator import PerceptualFeatures

    batch = render(48, 64, seed=3)
    has = toy_labels(batch.attrs)["smile"]
    assert 10 < int(has.sum()) < 38
    edited = {}
    for name, value in (("plus", 1.0), ("minus", -1.0)):
        attrs = batch.attrs.clone()
        attrs[:, INDEX["smile"]] = value
        edited[name] = render(48, 64, attrs=attrs).images
    features = PerceptualFeatures().eval()
    out = attribute_fid(batch.images, {"smile": edited["plus"]}, {"smile": edited["minus"]}, {"smile": has}, features)

    def by_hand(real, fake):
        with torch.no_grad():
            a, b = (features(x * 0.5 + 0.5).double().numpy() for x in (real, fake))
        covmean = linalg.sqrtm(np.cov(a, rowvar=False) @ np.cov(b, rowvar=False)).real
        return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(np.cov(a, rowvar=False) + np.cov(b, rowvar=False)
                                                                      - 2 * covmean))

    assert out["fid_attr_smile_add"] == pytest.approx(by_hand(batch.images[has], edited["plus"][~has]), rel=1e-3)
    assert out["fid_attr_smile_remove"] == pytest.approx(by_hand(batch.images[~has], edited["minus"][has]), rel=1e-3)
    assert out["fid_attr"] == pytest.approx((out["fid_attr_smile_add"] + out["fid_attr_smile_remove"]) / 2)
    unedited = by_hand(batch.images[has], batch.images[~has])
    wrong = by_hand(batch.images[has], edited["minus"][~has])
    assert out["fid_attr_smile_add"] < unedited < wrong, (out, unedited, wrong)
    assert attribute_fid(batch.images, {"smile": edited["plus"]}, {"smile": edited["minus"]},
                         {"smile": torch.ones(48, dtype=torch.bool)}, features) == {}  # no image lacks it: no pair
