"""The toy domain: the renderer's contract, and the committed toy nets' accuracy on fresh renders."""

from __future__ import annotations

import pytest
import torch

from ganinv.checkpoints.safe_io import CheckpointError
from ganinv.toy import (
    LABELS,
    NAMES,
    NUM_ATTRIBUTES,
    load_attribute_net,
    load_identity_net,
    load_perceptual_net,
    render,
    sample_attributes,
    training_record,
)
from ganinv.toy.attributes import INDEX, resample_editable
from ganinv.toy.scores import attribute_scores, identity_scores, perceptual_scores

TEST_SEED = 123_456  # neither the training stream nor the seed the record was scored with


@pytest.mark.parametrize("resolution", [32, 64])
def test_render_contract(resolution):
    b = render(64, resolution, seed=3)
    r = resolution
    assert b.images.shape == (64, 3, r, r) and b.frontal.shape == (64, 3, r, r) and b.attrs.shape == (64, 15)
    assert b.segmentation.shape == (64, r, r) and b.segmentation.dtype == torch.int64
    assert b.sketches.shape == (64, 1, r, r) and set(b.sketches.unique().tolist()) <= {-1.0, 1.0}
    for x in (b.images, b.frontal):
        assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 and x.std() > 0.2
    assert set(b.segmentation.unique().tolist()) == set(range(len(LABELS)))  # every part appears somewhere
    assert len(NAMES) == NUM_ATTRIBUTES


def test_render_is_deterministic_and_frontal_is_pose_zero():
    a, b, c = render(16, 32, seed=5), render(16, 32, seed=5), render(16, 32, seed=6)
    assert torch.equal(a.images, b.images) and torch.equal(a.attrs, b.attrs)
    assert not torch.equal(a.images, c.images)
    front = a.attrs.clone()
    front[:, INDEX["yaw"]] = 0
    assert torch.equal(render(16, 32, attrs=front).images, a.frontal)
    turned = a.attrs[:, INDEX["yaw"]].abs() > 0.3
    assert (a.images[turned] - a.frontal[turned]).abs().mean() > 0.02


def test_editable_factors_keep_identity_pixels_and_change_their_parts():
    attrs = sample_attributes(32, 9)
    attrs[:, INDEX["glasses"]] = 0
    on = attrs.clone()
    on[:, INDEX["glasses"]] = 1
    a, b = render(32, 64, attrs=attrs), render(32, 64, attrs=on)
    glasses = LABELS.index("glasses")
    assert not (a.segmentation == glasses).any() and (b.segmentation == glasses).float().mean() > 0.01
    changed = (a.images - b.images).abs().amax(1) > 0.05
    assert changed.float().mean() < 0.15  # glasses change the eye region, not the face
    with pytest.raises(ValueError, match="shape"):
        render(4, 32, attrs=torch.zeros(4, 3))


def test_sketch_marks_label_boundaries():
    b = render(8, 32, seed=1)
    lab = b.segmentation
    boundary = torch.zeros_like(lab, dtype=torch.bool)
    boundary[:, :, 1:] |= lab[:, :, 1:] != lab[:, :, :-1]
    boundary[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    assert torch.equal(b.sketches[:, 0] < 0, boundary)


def test_attribute_net_accuracy_on_fresh_renders():
    s = attribute_scores(load_attribute_net(), n=300, seed=TEST_SEED)
    assert s["mean_mae"] < 0.06 and s["glasses_accuracy"] > 0.97
    for name in ("smile", "yaw", "age", "eyes_open"):  # the factors edits are scored on
        assert s["mae"][name] < 0.075, (name, s["mae"][name])  # a constant guess: 0.25 on a uniform factor
    recorded = training_record()["attribute_net"]["scores"]
    assert abs(s["mean_mae"] - recorded["mean_mae"]) < 0.02


def test_identity_net_separates_identities_under_edits():
    s = identity_scores(load_identity_net(), n=200, seed=TEST_SEED)
    assert s["auc"] > 0.97 and s["auc"] > s["pixel_baseline"]["auc"] + 0.1
    assert s["top1"] > 0.5 and s["top1"] > 3 * s["pixel_baseline"]["top1"]


def test_identity_embedding_ignores_editable_factors():
    net = load_identity_net()
    attrs = sample_attributes(64, TEST_SEED)
    same = net.similarity(render(64, 64, attrs=attrs).images,
                          render(64, 64, attrs=resample_editable(attrs, 1)).images)
    other = net.similarity(render(64, 64, attrs=attrs).images, render(64, 64, seed=TEST_SEED + 1).images)
    assert same.mean() > other.mean() + 0.4


def test_perceptual_net_agrees_with_attribute_distance():
    s = perceptual_scores(load_perceptual_net(), n=300, seed=TEST_SEED)
    assert s["two_afc"] > 0.8 and s["two_afc"] > s["two_afc_pixel_l2"]
    net = load_perceptual_net()
    x = render(4, 64, seed=2).images
    d = net(x, x)
    assert d.shape == (4,) and d.abs().max() < 1e-6 and (net(x, x.flip(0)) > 0.05).all()


def test_loading_a_wrong_file_names_it(tmp_path):
    from ganinv.checkpoints.safe_io import atomic_save

    atomic_save({"state_dict": {"nope": torch.zeros(1)}, "config": {}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt.*attribute net.*train_nets"):
        load_attribute_net(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_identity_net(tmp_path / "missing.pt")


@pytest.mark.slow  # a quality check of the committed generator (1000 samples, 13 s); it changes only with toy-assets
def test_toy_generator_samples_look_like_renders():
    from ganinv.stylegan2 import Generator
    from ganinv.toy import load_generator
    from ganinv.toy.generator import generator_scores

    g = load_generator()
    assert g.size == 64 and g.latent_avg.shape == (g.style_dim,)
    trained = generator_scores(g, n=500, seed=7, render_seed=TEST_SEED)
    torch.manual_seed(0)
    untrained = Generator(**g.config).eval()
    untrained.latent_avg = untrained.mean_latent(1000)[0]
    baseline = generator_scores(untrained, n=500, seed=7, render_seed=TEST_SEED)
    # Samples sit far nearer the renders than an untrained generator's, on both feature and attribute statistics.
    assert trained["fid_perceptual"] < 0.1 * baseline["fid_perceptual"]
    assert trained["attribute_w1_mean"] < 0.6 * baseline["attribute_w1_mean"]
    assert trained["attribute_w1_mean"] < 0.1
    recorded = training_record()["generator"]["scores"]
    assert trained["attribute_w1_mean"] < recorded["attribute_w1_mean"] + 0.02
