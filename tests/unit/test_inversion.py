"""The `Inversion` contract: the generator's per-image hooks, what an inversion carries through edits, files and
the CLIs, and the refiners (PTI above all) that make one better."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ganinv.editing import edit, interpolate
from ganinv.inversion import Inversion
from ganinv.methods import AverageCode, ConfigError
from ganinv.refine import CodeOptimiser, PivotalTuning
from ganinv.refine.pti import synthesis_parameters
from ganinv.toy import load_generator, load_perceptual_net, render
from tests.commands import composed


@pytest.fixture(scope="module")
def start():
    return AverageCode(load_generator()).eval()


def codes_of(generator, n: int, seed: int = 0) -> torch.Tensor:
    z = torch.randn(n, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return generator.style(z)[:, None].expand(-1, generator.n_latent, -1).clone()


def test_generator_hooks_change_nothing_when_empty_and_only_their_image_otherwise(tiny_generator):
    g = tiny_generator.eval()
    codes = codes_of(g, 3)
    plain = g([codes], input_is_latent=True, randomize_noise=False)[0]
    params = synthesis_parameters(g)
    zero = {n: torch.zeros(3, *p.shape) for n, p in params.items()}
    torch.testing.assert_close(g([codes], input_is_latent=True, randomize_noise=False, offsets=zero)[0], plain,
                               rtol=0, atol=1e-5)  # per-image path (vectorised grouped convolutions): float error
    r = 8
    conditions = {r: (torch.zeros(3, g.channels[r], r, r), torch.zeros(3, g.channels[r], r, r))}
    assert torch.equal(g([codes], input_is_latent=True, randomize_noise=False, conditions=conditions)[0], plain)
    name = "convs.0.conv.weight"
    zero[name][1] += 0.5 * torch.randn_like(params[name])  # not a rescaling: demodulation would undo it
    moved = g([codes], input_is_latent=True, randomize_noise=False, offsets=zero)[0]
    changed = (moved - plain).flatten(1).abs().amax(1)
    assert changed[1] > 0.01 and changed[[0, 2]].max() < 1e-5, changed
    conditions[r][1][2] += 1.0
    shifted = g([codes], input_is_latent=True, randomize_noise=False, conditions=conditions)[0]
    assert (shifted - plain).flatten(1).abs().amax(1).tolist()[:2] == [0.0, 0.0] and not torch.equal(shifted, plain)
    with pytest.raises(KeyError, match="nope"):
        g([codes], input_is_latent=True, offsets={"nope": zero[name]})


def test_contracts_are_checked_where_they_meet(start, tiny_generator):
    """Wrong shapes stop with the contract they break: an inversion's parts, a generator's styles, a method's codes."""
    codes = torch.zeros(2, 6, 64)
    with pytest.raises(ValueError, match=r"codes must be \[B, n_latent, style_dim\], got \(2, 64\)"):
        Inversion(codes[:, 0])
    with pytest.raises(ValueError, match=r"residual \(3, 3, 8, 8\)"):
        Inversion(codes, residual=torch.zeros(3, 3, 8, 8))
    with pytest.raises(ValueError, match=r"noise\[1\]"):
        Inversion(codes, noise=[torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 8, 8)])
    Inversion(codes, noise=[torch.zeros(1, 1, 4, 4)], offsets={"w": torch.zeros(2, 5)})  # shared noise is fine
    with pytest.raises(ValueError, match=r"styles must be \[B, 64\] or \[B, n_latent, 64\], got \(2, 6, 32\)"):
        tiny_generator([torch.zeros(2, 6, 32)], input_is_latent=True)
    x = torch.zeros(2, 3, start.input_size, start.input_size)
    shape = tuple(start.invert(x).codes.shape)
    broken = AverageCode(load_generator()).eval()
    broken.encode = lambda x: torch.zeros(len(x), shape[1] - 1, shape[2])
    with pytest.raises(ValueError, match=rf"codes \(2, {shape[1] - 1}, {shape[2]}\); the generator needs "
                                         rf"\[2, {shape[1]}, {shape[2]}\]"):
        broken.invert(x)


def test_an_inversion_slices_joins_saves_and_edits_keeping_its_per_image_state(start, tmp_path):
    from ganinv.checkpoints import atomic_save, load_torch_file

    g = start.generator
    inv = Inversion(codes_of(g, 4), offsets={"input.input": torch.randn(4, *g.input.input.shape) * 0.1},
                    residual=torch.randn(4, 3, 8, 8), extra={"fused": torch.randn(4, 2, 8, 8)})
    assert len(inv[1:3]) == 2 and len(inv[2]) == 1 and inv.refined and not Inversion(inv.codes).refined
    joined = Inversion.cat([inv[:1], inv[1:]])
    assert torch.equal(joined.codes, inv.codes) and torch.equal(joined.residual, inv.residual)
    assert torch.equal(joined.offsets["input.input"], inv.offsets["input.input"])
    atomic_save(inv.state(), tmp_path / "inv.pt")
    again = Inversion.from_state(load_torch_file(tmp_path / "inv.pt"))
    assert torch.equal(again.offsets["input.input"], inv.offsets["input.input"])
    assert torch.equal(again.extra["fused"], inv.extra["fused"])
    assert torch.equal(joined.extra["fused"], inv.extra["fused"])
    d = F.normalize(torch.randn(g.style_dim), dim=0)
    moved = edit(inv, d, 2.0, layers=[0, 1])
    assert moved.offsets is inv.offsets and moved.residual is inv.residual and moved.extra is inv.extra
    torch.testing.assert_close(moved.codes[:, :2], inv.codes[:, :2] + 2 * d)
    assert torch.equal(moved.codes[:, 2:], inv.codes[:, 2:])
    tuned = inv.replace(residual=None, extra=None)  # what only HFGI, StyleRes or SFE render
    with torch.no_grad():  # the edit is rendered through each image's own generator
        assert torch.equal(start.reconstruct(edit(tuned, d, 0.0)), start.reconstruct(tuned))
        assert not torch.equal(start.reconstruct(tuned), start.reconstruct(Inversion(inv.codes)))
        with pytest.raises(ConfigError, match="HFGI run that made it"):
            start.reconstruct(inv)
        with pytest.raises(ConfigError, match="StyleRes or SFE run that made it"):
            start.reconstruct(inv.replace(residual=None))
    row = interpolate(inv[0], inv[3], 5)
    assert len(row) == 5 and torch.equal(row.offsets["input.input"][0], inv.offsets["input.input"][0])
    torch.testing.assert_close(row.offsets["input.input"][-1], inv.offsets["input.input"][3])
    assert inv.storage_bytes() == 4 * (g.n_latent * g.style_dim + g.input.input.numel() + 3 * 64 + 2 * 64)


@pytest.mark.slow  # a W pivot and two tunings: 28 s
def test_pti_tunes_each_image_below_its_pivot_and_keeps_other_codes_in_place(start):
    """From a W pivot, PTI lowers every image's distortion and leaves the codes; the locality regulariser keeps
    the tuned generators' images of other codes (at the regulariser's distance) closer to the original's."""
    x = render(3, 64, seed=11).images
    net = load_perceptual_net()
    from ganinv.losses import MeanDistance

    net = MeanDistance(net)
    pivot = CodeOptimiser(start, net, space="w", steps=30, lr=0.05)(start.invert(x), x)
    torch.manual_seed(0)
    tuned = PivotalTuning(start, net, steps=25, lr=3e-3, stop_below=0.0)(pivot, x)
    torch.manual_seed(0)
    loose = PivotalTuning(start, net, steps=25, lr=3e-3, stop_below=0.0, regulariser_every=0)(pivot, x)
    assert torch.equal(tuned.codes, pivot.codes) and set(tuned.offsets) == set(synthesis_parameters(start.generator))

    def per_image(inv):
        with torch.no_grad():
            return F.mse_loss(start.reconstruct(inv), x, reduction="none").flatten(1).mean(1)

    assert (per_image(tuned) < 0.8 * per_image(pivot)).all(), (per_image(pivot), per_image(tuned))
    others = codes_of(start.generator, 3, seed=5)
    with torch.no_grad():
        original = start.reconstruct(Inversion(others))
        drift = {k: float(F.mse_loss(start.reconstruct(inv.replace(codes=others)), original))
                 for k, inv in (("regularised", tuned), ("free", loose))}
    assert drift["regularised"] < drift["free"], drift


def test_pti_stops_an_image_at_its_threshold_and_keeps_its_offsets(start):
    x = render(2, 64, seed=3).images
    from ganinv.losses import MeanDistance

    net = MeanDistance(load_perceptual_net())
    pivot = start.invert(x)
    with torch.no_grad():
        first = net.per_image(start.reconstruct(pivot), x)
    threshold = float(first.mean())  # between the two images' distances: one stops at once, the other tunes
    tuned = PivotalTuning(start, net, steps=5, lr=3e-3, stop_below=threshold)(pivot, x)
    stopped = int(first.argmin())
    assert all(float(v[stopped].abs().max()) == 0 for v in tuned.offsets.values())
    assert any(float(v[1 - stopped].abs().max()) > 0 for v in tuned.offsets.values())


def test_invert_saves_what_refined_editing_needs_and_edit_uses_it(renders, tmp_path):
    from ganinv.workflows.editing import edit_grid
    from ganinv.workflows.inverter import invert_folder, load_inversions

    pti = ("refine=pti", "refine.pivot=w", "refine.pivot_steps=3", "refine.steps=2", "batch_size=2")
    out, said = invert_folder(composed("invert", *pti, f"input={renders}", f"output={tmp_path}/pti"))
    codes = torch.load(out / "codes.pt", weights_only=True)  # readable as before: file name -> W+ code
    assert sorted(codes) == ["face_0.png", "face_1.png", "face_2.png"] and codes["face_0.png"].shape == (10, 128)
    saved = load_inversions(out)
    assert saved["face_1.png"].offsets and torch.equal(saved["face_1.png"].codes[0], codes["face_1.png"])
    assert "MB per image" in said
    grid, _ = edit_grid(composed("edit", f"input={renders}", f"inverted={out}", f"output={tmp_path}/e.png",
                                 "max_images=2", "edits=[smile]", "strengths=[0,3]"))
    assert grid.exists()
    with pytest.raises(Exception, match="refine.pivot=w"):
        invert_folder(composed("invert", "refine=pti", f"input={renders}", f"output={tmp_path}/none"))


def test_eval_records_a_refined_method_and_its_refiner(renders, tmp_path):
    from ganinv.workflows.evaluation import evaluate

    ev = ("n_images=4", "editability.lec_images=2", "editability.p_norm_samples=500", "fid=none", "batch_size=2")
    record = json.loads(evaluate(composed("eval", "refine=pti", "refine.pivot=w", "refine.pivot_steps=3",
                                          "refine.steps=2", *ev, f"output={tmp_path}/pti.json")).read_text())
    assert record["name"] == "PTI on a W pivot (steps 2, pivot_steps 3)"
    assert record["refine"]["refiner"] == "PivotalTuning" and record["refine"]["lr"] == 3e-4
    assert record["timing"]["seconds_per_image"] > 0 and {"mse", "lec", "p_norm"} <= set(record["metrics"])
