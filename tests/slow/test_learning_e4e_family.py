"""The e4e family learns (make test-all): e4e, LSAP, and HyperStyle and HFGI on that e4e (tests/learning.py); LSAP's
alignment term aligns. The other encoders: test_learning_encoders.py (a file per worker)."""

from __future__ import annotations

import pytest
import torch

from tests.learning import E4E_FAMILY as RECIPES
from tests.learning import check_learned

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", RECIPES)
def test_each_method_learns_on_held_out_data(trained, name):
    check_learned(trained, name)


def test_lsap_codes_align_with_the_synthetic_direction_better_than_e4e(trained):
    """LSAP's alignment term does what it is for: after the same 60 iterations its held-out codes are closer to the
    generator's mean normalised style vector (lower SND) than e4e's (with its latent discriminator, as each recipe
    trains)."""
    from ganinv.losses import NormalizedStyleSpace

    _, lsap, dm, _ = trained["toy_lsap"]
    _, e4e, _, _ = trained["toy_e4e"]
    space = NormalizedStyleSpace(lsap.generator, 20_000)
    x = torch.cat([b["x"] for b in dm.val_dataloader()])
    snd = {name: float(space.distance(m.invert(x).codes).mean()) for name, m in (("lsap", lsap), ("e4e", e4e))}
    assert snd["lsap"] < snd["e4e"], snd


def test_dhr_at_its_official_settings_refines_the_trained_e4e_and_keeps_its_in_domain_edits(trained):
    """refine=dhr at GAN Inverter's settings (40 coarse steps, 100 feature and 50 weight steps) after the trained
    e4e: a held-out render's distortion falls by more than half, the codes stay, and a smile edit still moves
    the mouth (in-domain) by at least half e4e's pixel change and the background (feature-modulated) less. (The
    toy attribute net reads much less smile gain from it: docs/inversion.md#dhr.)"""
    import torch.nn.functional as F

    from ganinv.losses import MeanDistance
    from ganinv.metrics.suite import toy_directions
    from ganinv.refine import DomainSpecificHybridRefinement
    from ganinv.toy import LABELS, ToyFaceParser, load_perceptual_net
    from tests.learning import edit_change

    _, e4e, dm, _ = trained["toy_e4e"]
    x = next(iter(dm.val_dataloader()))["y"][:1]  # one image: 100 steps through per-image weights
    base = e4e.invert(x)
    torch.manual_seed(0)
    refined = DomainSpecificHybridRefinement(e4e, MeanDistance(load_perceptual_net()))(base, x)

    def per_image(inv):
        with torch.no_grad():
            return F.mse_loss(e4e.reconstruct(inv), x, reduction="none").flatten(1).mean(1)

    assert torch.equal(refined.codes, base.codes)
    assert (per_image(refined) < 0.5 * per_image(base)).all(), (per_image(base), per_image(refined))
    d = toy_directions(e4e.generator)
    change = edit_change(e4e, {"e4e": base, "dhr": refined}, d["smile"], d.layers, ToyFaceParser()(x),
                         {k: LABELS.index(k) for k in ("mouth", "background")})
    assert change["dhr"]["mouth"] > 0.5 * change["e4e"]["mouth"], change
    assert change["dhr"]["background"] < change["e4e"]["background"], change


def test_sam_learns_where_inversions_fail_and_trades_distortion_for_edits_by_its_threshold(trained, tmp_path):
    """`ganinv-train-invertibility` on the trained e4e (8 renders, single-space inversions shortened to 60 steps,
    W+ and F4; lr 10x the authors' for so few images): the held-out error maps it predicts are closer to the
    inversions' than its untrained start's. `refine=sam` (150 steps) after e4e on a held-out render: at the authors'
    threshold (every toy segment in W+, docs/inversion.md#sam) distortion falls below e4e's and a smile edit keeps
    at least 80 % of e4e's gain; at threshold 0 (every segment in F4) distortion falls further."""
    import torch.nn.functional as F

    from ganinv.configs import compose_config
    from ganinv.editing import edit
    from ganinv.losses import MeanDistance
    from ganinv.metrics.suite import toy_directions
    from ganinv.refine import SpatiallyAdaptiveMultilayer
    from ganinv.toy import AttributePredictor, load_perceptual_net
    from ganinv.workflows.invertibility import train_invertibility

    _, e4e, dm, run = trained["toy_e4e"]
    cfg = compose_config("train_invertibility", [
        f"checkpoint={run / 'checkpoints' / 'last.ckpt'}", f"output={tmp_path / 'p.pt'}", "n_images=8",
        "refine.steps=60", "refine.layers=[W+,F4]", "lr=0.001", "batch_size=4", "epochs=50"])
    path, measured = train_invertibility(cfg, show=False)
    assert measured["val_mse"] < measured["untrained_val_mse"], measured
    x = next(iter(dm.val_dataloader()))["y"][:1]
    base = e4e.invert(x)
    net, smile, d = MeanDistance(load_perceptual_net()), AttributePredictor("smile"), toy_directions(e4e.generator)

    def measure(inv):
        with torch.no_grad():
            rec = e4e.reconstruct(inv)
            gain = smile(e4e.reconstruct(edit(inv, d["smile"], 3.0, d.layers))) - smile(rec)
            return F.mse_loss(rec, x, reduction="none").flatten(1).mean(1), float(gain.mean())

    refined = {tau: SpatiallyAdaptiveMultilayer(e4e, net, predictor=str(path), layers=["W+", "F4"], threshold=tau,
                                                steps=150)(base, x) for tau in (0.225, 0.0)}
    (d_e4e, g_e4e), (d_w, g_w), (d_f, _) = measure(base), measure(refined[0.225]), measure(refined[0.0])
    assert not refined[0.225].features and set(refined[0.0].features) == {16}
    assert (d_w < d_e4e).all() and (d_f < d_w).all(), (d_e4e, d_w, d_f)
    assert g_w > 0.8 * g_e4e, (g_e4e, g_w)
