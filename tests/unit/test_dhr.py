"""DHR (`refine=dhr`): the generator's feature blend, the toy face parser, the domain-specific segmentation, and
the refinement's gain over its base with its edits kept."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganinv.inversion import Inversion
from ganinv.losses import MeanDistance
from ganinv.methods import AverageCode, ConfigError
from ganinv.metrics.suite import toy_directions
from ganinv.refine import CodeOptimiser, DomainSpecificHybridRefinement, build_refiner
from ganinv.refine.dhr import block_features
from ganinv.toy import LABELS, ToyFaceParser, load_generator, load_perceptual_net, render
from tests.commands import composed
from tests.learning import edit_change

SHORT = {"coarse_steps": 10, "feature_steps": 30, "weight_steps": 15}  # the paper's 40 / 100 / 50, shortened


@pytest.fixture(scope="module")
def start():
    return AverageCode(load_generator()).eval()


def test_the_feature_hook_keeps_its_mask_and_adds_its_map(tiny_generator):
    """`features={r: [keep | add]}`: keep 1 and add 0 change nothing, keep 0 and add the block's own features change
    nothing, adding a map is a residual (SAM) and changes only the images it is given to (also through the
    per-image weights path)."""
    g = tiny_generator.eval()
    codes = g.style(torch.randn(3, g.style_dim, generator=torch.Generator().manual_seed(0)))[:, None].expand(
        -1, g.n_latent, -1).clone()
    module = AverageCode(g)
    inv = Inversion(codes)
    with torch.no_grad():
        plain = module.reconstruct(inv)
        own = block_features(module, inv, 8)
        ones, zeros = torch.ones(3, 1, 8, 8), torch.zeros(3, 1, 8, 8)
        torch.testing.assert_close(module.reconstruct(inv.replace(features={8: torch.cat([ones, own * 0], 1)})),
                                   plain, rtol=0, atol=0)
        torch.testing.assert_close(module.reconstruct(inv.replace(features={8: torch.cat([zeros, own], 1)})), plain,
                                   rtol=0, atol=1e-6)
        delta = torch.zeros_like(own)
        delta[1] += 1.0
        moved = module.reconstruct(inv.replace(features={8: torch.cat([zeros, own + delta], 1)}))
        added = module.reconstruct(inv.replace(features={8: torch.cat([ones, delta], 1)}))
        zero = {n: torch.zeros(3, *p.shape) for n, p in g.named_parameters() if not n.startswith("style.")}
        per_image = module.reconstruct(inv.replace(features={8: torch.cat([ones, delta], 1)}, offsets=zero))
    changed = (moved - plain).flatten(1).abs().amax(1)
    assert changed[1] > 0.01 and changed[[0, 2]].max() < 1e-5, changed
    torch.testing.assert_close(added, moved, rtol=0, atol=1e-5)
    torch.testing.assert_close(per_image, moved, rtol=0, atol=1e-5)


def test_the_toy_parser_reads_the_renderers_parts():
    batch = render(16, 64, seed=9)
    labels = ToyFaceParser()(batch.images)
    agree = (labels == batch.segmentation).float().mean()
    skin = LABELS.index("skin")
    assert agree > 0.95 and (labels[batch.segmentation == skin] == skin).float().mean() > 0.9, float(agree)


def test_dhr_refines_below_its_base_keeps_codes_and_in_domain_edits_and_never_counts_the_background_in_domain(
        start):
    """From a short W optimisation (the base), DHR at shortened steps lowers every held-out render's distortion,
    leaves the codes, keeps the background out of the in-domain mask; a smile edit still moves the mouth (in-domain:
    at least half the base's pixel change) and moves the background less than the base's (its features are the
    refinement's)."""
    net = MeanDistance(load_perceptual_net())
    x = render(3, 64, seed=21).images
    base = CodeOptimiser(start, net, space="w", steps=20, lr=0.05)(start.invert(x), x)
    torch.manual_seed(0)
    dhr = DomainSpecificHybridRefinement(start, net, **SHORT)
    mask = dhr.segment(x)
    parts = ToyFaceParser()(x)
    background = parts == LABELS.index("background")
    assert float(mask[:, 0][background].max()) == 0 and 0.05 < float(mask.mean()) < 0.95, float(mask.mean())
    refined = dhr(base, x)
    assert torch.equal(refined.codes, base.codes) and set(refined.features) == {32}

    def per_image(inv):
        with torch.no_grad():
            return F.mse_loss(start.reconstruct(inv), x, reduction="none").flatten(1).mean(1)

    assert (per_image(refined) < 0.8 * per_image(base)).all(), (per_image(base), per_image(refined))
    d = toy_directions(start.generator)
    change = edit_change(start, {"base": base, "dhr": refined}, d["smile"], d.layers, parts,
                         {k: LABELS.index(k) for k in ("mouth", "background")})
    assert change["dhr"]["mouth"] > 0.5 * change["base"]["mouth"], change
    assert change["dhr"]["background"] < change["base"]["background"], change


def test_dhr_refuses_what_it_cannot_do(start, tiny_generator):
    net = MeanDistance(load_perceptual_net())
    with pytest.raises(ValueError, match="feature_resolution=64"):
        DomainSpecificHybridRefinement(start, net, feature_resolution=64)
    with pytest.raises(ValueError, match="not the toy one"):
        DomainSpecificHybridRefinement(AverageCode(tiny_generator), net)
    with pytest.raises(ValueError, match="spatial maps"):
        DomainSpecificHybridRefinement(start, None)
    node = composed("eval", "refine=dhr", "refine.parser=facer").refine
    with pytest.raises(ConfigError, match="refine.parser='facer'"):
        build_refiner(node, start, net)
