"""The e4e family learns (make test-all): e4e, LSAP, and HyperStyle and HFGI on that e4e (tests/learning.py); LSAP's
alignment term aligns. The other encoders: test_learning_encoders.py (a file per worker)."""

from __future__ import annotations

import pytest
import torch

from tests.learning import E4E_FAMILY as RECIPES
from tests.learning import check_learned, train_recipes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_recipes(RECIPES, tmp_path_factory)


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
