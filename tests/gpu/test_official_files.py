"""The official pSp / e4e / ReStyle tiny files on the device (`pytest -m gpu`, `make gpu-check`): the codes and
images the official code made (tests/fixtures, on a CPU) within the CPU tests' tolerances (tests/unit/test_official.py),
through the inference API users run."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganinv.methods import load_method
from tests.fixtures import examples
from tests.unit.test_official import CODES_ATOL, IMAGES_ATOL, RESTYLE, RESTYLE_IMAGES_ATOL, RESTYLE_LATENTS_ATOL

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return examples.official_checkpoints(tmp_path_factory.mktemp("official"))


@pytest.fixture(scope="module")
def refs(fixtures_dir):
    return {n: torch.load(fixtures_dir / f"{n}_tiny_ref.pt", weights_only=True) for n in ("psp", "e4e", "restyle")}


@pytest.mark.parametrize("name, codes, images", [("psp", "codes", "images_32"),
                                                 ("e4e", "codes_stage18", "images_32_stage18")])
def test_psp_and_e4e_files_on_the_device(name, codes, images, files, refs, device):
    m = load_method(files[name]).to(device)
    inv = m.invert(refs["psp"]["x"].to(device))
    with torch.no_grad():
        out = m.reconstruct(inv)
    assert_close(inv.codes.cpu(), refs[name][codes], rtol=0, atol=CODES_ATOL)
    assert_close(out.cpu(), refs[name][images], rtol=0, atol=IMAGES_ATOL)


@pytest.mark.parametrize("prefix", list(RESTYLE))
def test_restyle_files_on_the_device(prefix, files, refs, device):
    ref = refs["restyle"]
    with torch.no_grad():
        steps = load_method(files[f"restyle_{prefix}"]).to(device).invert_steps(refs["psp"]["x"].to(device),
                                                                               int(ref["n_iters"]))
    for t, step in enumerate(steps):
        assert_close(step.latent.cpu(), ref[f"{prefix}/latents"][t], rtol=0, atol=RESTYLE_LATENTS_ATOL)
        assert_close(step.image.cpu(), ref[f"{prefix}/images_32"][t], rtol=0, atol=RESTYLE_IMAGES_ATOL)
