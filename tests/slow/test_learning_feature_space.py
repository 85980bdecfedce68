"""The methods that predict generator features learn (make test-all): the Feature-Style encoder, and StyleRes and SFE
on an e4e (tests/learning.py); SFE's editor learns the generator's edits, StyleRes's cycle learns to undo an edit;
and all three go through every command."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from ganinv.editing import edit
from ganinv.inversion import Inversion
from tests.commands import composed
from tests.learning import FEATURE_SPACE as RECIPES
from tests.learning import check_learned

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", RECIPES)
def test_each_method_learns_on_held_out_data(trained, name):
    check_learned(trained, name)


def held_out(trained) -> torch.Tensor:
    return torch.cat([b["y"] for b in trained["toy_e4e"][2].val_dataloader()])[:16]


def test_sfe_editor_learns_the_generators_edits(trained):
    """On pairs the generator makes from held-out images (e4e's reconstruction and its smile edit, as SFE trains):
    the edited render of SFE's inversion of the reconstruction is closer to the generator's edited image after the
    editor's 20 iterations than with the inverter's fused features kept as they are (the editor untrained)."""
    from ganinv.metrics.suite import toy_directions

    _, sfe, _, _ = trained["toy_sfe"]
    d = toy_directions(sfe.generator)
    with torch.no_grad():
        base = sfe.base.invert(held_out(trained)).codes
        seen, target = (sfe.reconstruct(Inversion(c)).clamp(-1, 1) for c in (base, edit(base, d["smile"], 3.0,
                                                                                          d.layers)))
        inv = sfe.invert(seen)
        moved = edit(inv, d["smile"], 3.0, d.layers)
        edited = sfe.reconstruct(moved)
        kept = sfe.render(moved.codes, inv.extra["fused"])  # the fused features, not edited
    err = {"editor": float(F.mse_loss(edited.clamp(-1, 1), target)), "kept": float(F.mse_loss(kept.clamp(-1, 1),
                                                                                              target))}
    assert err["editor"] < err["kept"], err


def test_styleres_cycle_brings_an_edit_back_better_than_its_untrained_start(trained):
    """The paper's cycle on held-out images: a smile edit rendered, inverted again and edited back is closer to
    the image after training than from the untrained StyleRes."""
    from ganinv.metrics.suite import toy_directions

    before, after, _, _ = trained["toy_styleres"]
    x, d = held_out(trained), toy_directions(after.generator)

    def cycle_error(module) -> float:
        module.eval()
        with torch.no_grad():
            edited = module.reconstruct(edit(module.invert(x), d["smile"], 3.0, d.layers)).clamp(-1, 1)
            back = module.invert(edited)
            return float(F.mse_loss(module.reconstruct(edit(back, d["smile"], -3.0, d.layers)).clamp(-1, 1), x))

    assert cycle_error(after) < cycle_error(before)


def test_feature_space_methods_are_evaluated_inverted_edited_and_ranked(trained, tmp_path):
    """Feature-Style, StyleRes and SFE through every command: ganinv-eval (the run's label), -invert (their
    per-image state saved), -edit (from the checkpoint and from the saved inversions), the leaderboard, and
    ganinv-export's refusal."""
    from ganinv.commands.export import main as export_main
    from ganinv.toy import render
    from ganinv.workflows.editing import edit_grid
    from ganinv.workflows.evaluation import evaluate
    from ganinv.workflows.inverter import invert_folder, load_inversions
    from ganinv.workflows.leaderboard import leaderboard

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(render(2, 64, seed=9).images):
        save_image(img * 0.5 + 0.5, photos / f"{i}.png")
    small = ("n_images=4", "editability.lec_images=2", "editability.p_norm_samples=500", "fid=none", "batch_size=2")
    for name, label, state in (("toy_feature_style", "Feature-Style", "features"),
                               ("toy_styleres", "StyleRes (on e4e)", "extra"), ("toy_sfe", "SFE (edits by e4e)",
                                                                                 "extra")):
        ckpt = trained[name][3] / "checkpoints" / "last.ckpt"
        record = json.loads(evaluate(composed("eval", f"checkpoint={ckpt}", *small,
                                              f"output={tmp_path}/records/{name}.json")).read_text())
        assert record["name"] == label and {"mse", "lec", "edit_gain"} <= set(record["metrics"])
        out, _ = invert_folder(composed("invert", f"checkpoint={ckpt}", f"input={photos}",
                                        f"output={tmp_path}/{name}_inv"))
        assert getattr(load_inversions(out)["0.png"], state)
        for source in ([], [f"inverted={out}"]):
            grid, _ = edit_grid(composed("edit", f"checkpoint={ckpt}", f"input={photos}", *source, "edits=[smile]",
                                         "strengths=[0,3]", f"output={tmp_path}/{name}_{len(source)}.png"))
            assert grid.exists()
        assert export_main([str(ckpt), str(tmp_path / f"{name}.pt")]) == 2  # no official layout: one line
    names = {e.name for e in leaderboard(composed("leaderboard", f"input={tmp_path}/records", "show=[]"))}
    assert names == {"Feature-Style", "StyleRes (on e4e)", "SFE (edits by e4e)"}
