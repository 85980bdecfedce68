"""SAM (`refine=sam`): its choice of space per segment, schedule and regularisers as the authors' code computes them,
the result's features (the optimised image exactly, kept under edits), its predictor's file, and its refusals.
Its learning (predictor and refinement on held-out renders): tests/slow/test_learning_e4e_family.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganinv.errors import CheckpointError
from ganinv.inversion import Inversion
from ganinv.losses import MeanDistance
from ganinv.methods import AverageCode, ConfigError
from ganinv.refine import InvertibilityPredictor, SpatiallyAdaptiveMultilayer, build_refiner
from ganinv.refine.dhr import block_features
from ganinv.refine.face_parsing import CELEBAMASK_LABELS, BiSeNet
from ganinv.refine.sam import additive, delta, mvg, mvg_stats, ramp, resized_mask, select
from ganinv.toy import load_generator, load_perceptual_net, render
from tests.commands import composed
from tests.fixtures import examples

FIXTURES = examples.FIXTURES


@pytest.fixture(scope="module")
def start():
    return AverageCode(load_generator()).eval()


def official_choice(maps: dict[str, np.ndarray], segments: np.ndarray, tau: float) -> np.ndarray:
    """The authors' `refine` (sam_inv_optimization.py), transcribed: spaces visited from the latest to W+, the last
    one under tau wins; F10 when none is (here: the latest space given)."""
    order = ["F10", "F8", "F6", "F4", "W+"]
    latest = [n for n in order if n in maps][0]
    out = np.zeros(segments.shape, dtype=object)
    for v in np.unique(segments):
        seg = segments == v
        chosen = latest
        for name in order:
            if name in maps and (maps[name] * seg).sum() / seg.sum() <= tau:
                chosen = name
        out[seg] = chosen
    return out


def test_each_segment_goes_to_the_earliest_space_under_the_threshold_as_the_authors_choose():
    g = torch.Generator().manual_seed(0)
    spaces = ["W+", "F4", "F6"]
    errors = [torch.rand(2, 1, 16, 16, generator=g) * s for s in (0.6, 0.45, 0.3)]  # later spaces invert better
    segments = torch.randint(0, 5, (2, 16, 16), generator=g)
    ours = select(errors, segments, 0.225)
    for b in range(2):
        theirs = official_choice({s: e[b, 0].numpy() for s, e in zip(spaces, errors)}, segments[b].numpy(), 0.225)
        assert (np.array(spaces, dtype=object)[ours[b].numpy()] == theirs).all()
    assert len(torch.unique(ours)) > 1  # the example exercises more than one choice


def test_the_schedule_and_regularisers_are_the_authors():
    steps = 1001
    for i in (0, 10, 50, 500, 800, 1000):  # their loop: lr_ramp with rampdown 0.25, rampup 0.05
        t = i / steps
        r = min(1.0, (1.0 - t) / 0.25)
        r = (0.5 - 0.5 * np.cos(r * np.pi)) * min(1.0, t / 0.05)
        assert math.isclose(ramp(t), r, rel_tol=1e-12, abs_tol=1e-15)
    gen = load_generator()
    stats = mvg_stats(gen, samples=500)
    w = gen.style(torch.randn(2, gen.style_dim))[:, None].repeat(1, gen.n_latent, 1) + 0.1 * torch.randn(
        2, gen.n_latent, gen.style_dim)
    for b in range(2):  # compute_mvg and delta_loss, one image as they run
        v = F.leaky_relu(w[b:b + 1].double(), negative_slope=5.0)
        theirs = sum(float((v[:, i] - stats["mean_v"]) @ stats["inv_cov_v"] @ (v[:, i] - stats["mean_v"]).T)
                     for i in range(v.shape[1]))
        assert math.isclose(float(mvg(w, stats)[b]), theirs, rel_tol=1e-9)
        theirs = sum(float(torch.norm(w[b:b + 1, i] - w[b:b + 1, 0], 2, dim=1).mean()) for i in range(1, w.shape[1]))
        assert math.isclose(float(delta(w)[b]), theirs, rel_tol=1e-5)
    half = torch.zeros(1, 64, 64, dtype=torch.bool)
    half[:, :, :32] = True
    small = resized_mask(half, 16)
    assert small.shape == (1, 1, 16, 16) and float(small.min()) == 0 and float(small.max()) <= 1
    # Lanczos rings by under 1 % near the edge (and is clipped at the mask's bounds, as theirs)
    assert (small[0, 0, :, :7] - 1).abs().max() < 0.01 and small[0, 0, :, 9:].abs().max() < 0.01, small[0, 0, 0]


def test_the_result_renders_the_optimised_image_and_keeps_its_features_under_an_edit(start):
    """Few steps from the average code with a mask over the top half of the 16-px block: the result keeps 1 − mask
    of the generator's own features there and renders the optimised state (the residual shows); an edit of the
    codes up to that block leaves the features under the mask (the next block's, away from the mask's edge) as
    inverted and moves the rest."""
    x = render(2, 64, seed=3).images
    sam = SpatiallyAdaptiveMultilayer(start, MeanDistance(load_perceptual_net()), steps=12)
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, :8] = 1
    torch.manual_seed(0)
    out = sam.fit(start.invert(x), x, {16: mask})
    assert set(out.features) == {16} and torch.equal(out.features[16][:, :1], 1 - mask)
    with torch.no_grad():
        assert float((start.reconstruct(out) - start.reconstruct(Inversion(out.codes))).abs().max()) > 1e-3
    edited = out.replace(codes=out.codes.clone())
    edited.codes[:, :5] += 0.5 * torch.randn(2, 1, out.codes.shape[-1])  # the layers of the blocks up to 16 px
    moved = (block_features(start, edited, 32) - block_features(start, out, 32)).abs().mean(1)
    assert float(moved[:, :12].max()) < 1e-5 < float(moved[:, 20:].mean()), (moved[:, :12].max(), moved[:, 20:].mean())


def test_the_predictor_file_round_trips_and_bad_files_and_options_are_refused(start, tmp_path, tiny_generator):
    net = InvertibilityPredictor(["W+", "F4"])
    net.save(tmp_path / "p.pt", generator_hash="another")
    again, meta = InvertibilityPredictor.load(tmp_path / "p.pt")
    x = render(2, 64, seed=1).images
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(net.eval()(x).values(), again(x).values()))
    assert meta["generator_hash"] == "another"
    distance = MeanDistance(load_perceptual_net())
    with pytest.raises(ValueError, match="another generator"):
        SpatiallyAdaptiveMultilayer(start, distance, predictor=str(tmp_path / "p.pt"), layers=["W+", "F4"])
    with pytest.raises(ValueError, match="not F6"):
        SpatiallyAdaptiveMultilayer(start, distance, predictor=str(tmp_path / "p.pt"))
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an invertibility predictor"):
        InvertibilityPredictor.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not the toy one"):
        SpatiallyAdaptiveMultilayer(AverageCode(tiny_generator), distance)
    with pytest.raises(ValueError, match="list W\\+"):
        SpatiallyAdaptiveMultilayer(start, distance, layers=["F4"])
    with pytest.raises(ConfigError, match="refine.predictor=<file>"):
        build_refiner(composed("eval", "refine=sam").refine, start, distance)
    assert additive({}, {}) is None


def test_the_predictor_command_names_what_is_missing_and_refuses_another_domain_before_any_work(
        tmp_path, monkeypatch, capsys):
    from tests.commands import in_process, one_line_error
    from tests.fixtures import examples

    monkeypatch.chdir(tmp_path)
    run = in_process("train_invertibility", f"output={tmp_path / 'p.pt'}", monkeypatch=monkeypatch, capsys=capsys)
    one_line_error(run, "ganinv-train-invertibility", "checkpoint= is required")
    official = examples.official_checkpoints(tmp_path / "built")["psp"]  # a pSp of another (the tiny) generator
    run = in_process("train_invertibility", f"checkpoint={official}", f"output={tmp_path / 'p.pt'}",
                     monkeypatch=monkeypatch, capsys=capsys)
    one_line_error(run, "ganinv-train-invertibility", "not the toy one")
    assert not (tmp_path / "p.pt").exists()


def test_the_predictors_inversions_are_kept_batch_by_batch_and_resume(start, tmp_path):
    from ganinv.checkpoints.pieces import Pieces
    from ganinv.workflows.invertibility import error_maps

    x = render(2, 64, seed=4).images
    sam = SpatiallyAdaptiveMultilayer(start, MeanDistance(load_perceptual_net()), steps=2, layers=["W+", "F4"])
    maps = error_maps(sam, x, 1, Pieces(tmp_path / "partial", {"job": 1}))
    assert maps.shape == (2, 2, 64, 64) and (maps >= 0).all() and maps.sum() > 0

    def interrupted(*_):
        raise AssertionError("a kept batch was inverted again")

    sam.fit = interrupted
    assert torch.equal(error_maps(sam, x, 1, Pieces(tmp_path / "partial", {"job": 1})), maps)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The authors' files in their layouts, with seeded weights: SAM's predictor and the BiSeNet face parser."""
    folder = tmp_path_factory.mktemp("released")
    torch.save(examples.seeded(BiSeNet().state_dict()), folder / "79999_iter.pth")
    return examples.sam_predictor(folder / "invertibility_faces_sg2.pt"), folder / "79999_iter.pth"


def test_the_authors_released_predictor_loads_by_its_layout_and_reproduces_their_network(released, tmp_path):
    """SAM's released file (`sd_base`: pytorch-deeplab-xception's DeepLab v3+, one `layer_head` per space) against
    the authors' network run on the same weights (tests/fixtures/sam_invertibility_tiny_ref.pt)."""
    manifest = json.loads((FIXTURES / "manifest_sam_invertibility.json").read_text())
    path = released[0]
    state = torch.load(path, weights_only=True)
    assert {f"{part}/{k}": list(v.shape) for part, sd in state.items() for k, v in sd.items()} == manifest
    net, meta = InvertibilityPredictor.load(path)
    ref = torch.load(FIXTURES / "sam_invertibility_tiny_ref.pt", weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(net.base(ref["input"]), ref["base"], rtol=0, atol=1e-5)
        maps = net(ref["input"])
    assert meta == {"released": True} and list(maps) == ["W+", "F4", "F6", "F8", "F10"]
    for space, got in maps.items():
        torch.testing.assert_close(got, ref[f"map_{space}"], rtol=0, atol=1e-5)
    del state["F6"]["m.1.running_var"]
    torch.save(state, tmp_path / "damaged.pt")
    with pytest.raises(CheckpointError, match="released invertibility predictors.*F6.*m.1.running_var"):
        InvertibilityPredictor.load(tmp_path / "damaged.pt")


def test_sam_runs_with_the_face_parser_and_the_released_predictor_and_names_them_for_real_generators(
        start, released, tiny_generator):
    """Real photos' path, run on toy renders: BiSeNet segments (the authors' fused face), the released predictor
    chooses, SAM optimises; on a generator that is not the toy one the toy parser is refused with that fix."""
    predictor, parser = released
    distance = MeanDistance(load_perceptual_net())
    sam = SpatiallyAdaptiveMultilayer(start, distance, predictor=str(predictor), parser="bisenet",
                                      parser_weights=str(parser), layers=["W+", "F4", "F6"], steps=2, threshold=0)
    x = render(2, 64, seed=4).images
    segments = sam.segments(x)
    face = CELEBAMASK_LABELS.index("skin")
    assert not torch.isin(segments, torch.tensor([CELEBAMASK_LABELS.index(n) for n in ("nose", "hair", "l_eye")])
                          ).any() and segments.shape == (2, 64, 64) and int(sam.fused[face]) == face
    out = sam(start.invert(x), x)
    assert out.codes.shape == (2, start.n_latent, start.latent_avg.shape[-1]) and set(out.features) <= {16, 32}
    # the files it reads do not set its experiment apart (seeds with their own predictors are one row)
    assert "predictor" not in sam.setting() and "parser_weights" not in sam.setting()
    assert str(parser.parent) not in sam.label() and "parser bisenet" in sam.label()
    with pytest.raises(ValueError, match="refine.parser=bisenet refine.parser_weights"):
        SpatiallyAdaptiveMultilayer(AverageCode(tiny_generator), distance)
