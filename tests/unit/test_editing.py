"""Editing directions against analytic answers: SeFa's eigenvectors, a planted principal direction, a planted
linear attribute; files round-trip and refuse another generator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganinv.checkpoints import CheckpointError
from ganinv.editing import edit, ganspace, interfacegan, interpolate, load_directions, sefa, style_layers


def test_sefa_directions_are_unit_eigenvectors_in_sorted_order(tiny_generator):
    d = sefa(tiny_generator)
    rows = [conv.conv.modulation.weight * conv.conv.modulation.scale for conv in style_layers(tiny_generator).values()]
    a = torch.nn.functional.normalize(torch.cat(rows), dim=1).double()
    ata = a.T @ a
    v, lam = d.vectors.double(), d.scores.double()
    assert torch.allclose(v @ v.T, torch.eye(len(v), dtype=torch.double), atol=1e-5)  # orthonormal
    assert torch.allclose(v @ ata, lam[:, None] * v, atol=1e-4 * float(lam.max()))  # eigenvectors of AᵀA
    assert torch.all(lam[:-1] >= lam[1:]) and d.layers == sorted(style_layers(tiny_generator))
    one = sefa(tiny_generator, layers=[0, 1])
    assert one.layers == [0, 1] and not torch.allclose(one.vectors[0].abs(), d.vectors[0].abs())
    with pytest.raises(ValueError, match="no modulated conv"):
        sefa(tiny_generator, layers=[99])


class Planted(nn.Module):
    """A stand-in generator: w = z with one planted direction stretched; its 'image' is w itself."""

    def __init__(self, direction: torch.Tensor, stretch: float):
        super().__init__()
        self.style_dim = len(direction)
        self.register_buffer("d", direction / direction.norm())
        self.stretch = stretch
        self.p = nn.Parameter(torch.zeros(1))

    def get_latent(self, z):
        return z + (self.stretch - 1) * (z @ self.d)[:, None] * self.d

    def forward(self, styles, input_is_latent=True, randomize_noise=False):
        return styles[0][:, None, :, None], None


def test_ganspace_recovers_a_planted_principal_direction():
    d = torch.randn(16, generator=torch.Generator().manual_seed(1))
    found = ganspace(Planted(d, stretch=4.0), n_samples=5000, n_components=4)
    assert abs(float(found.vectors[0] @ (d / d.norm()))) > 0.99
    assert found.scores[0] == pytest.approx(4.0, rel=0.1) and found.scores[1] == pytest.approx(1.0, rel=0.1)


def test_interfacegan_separates_a_planted_linear_attribute():
    d = torch.randn(16, generator=torch.Generator().manual_seed(2))
    d = d / d.norm()
    found = interfacegan(Planted(torch.ones(16), 1.0), lambda img: img.flatten(1) @ d, "planted", n_samples=4000,
                         ratio=0.1)
    assert float(found["planted"] @ d) > 0.95 and float(found.scores[0]) == 1.0  # points to higher scores


def test_directions_file_round_trip_and_generator_check(tiny_generator, tmp_path):
    d = sefa(tiny_generator)
    path = d.save(tmp_path / "sefa.pt")
    back = load_directions(path, tiny_generator)
    assert torch.equal(back.vectors, d.vectors) and back.names == d.names and back.layers == d.layers
    other = Planted(torch.ones(64), 1.0)
    with pytest.raises(CheckpointError, match="another generator"):
        load_directions(path, other)
    with pytest.raises(KeyError, match="no direction 'smile'"):
        back["smile"]
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ganinv directions file"):
        load_directions(tmp_path / "other.pt")


def test_edit_and_interpolate():
    codes, d = torch.zeros(2, 4, 3), torch.tensor([1.0, 0.0, 0.0])
    out = edit(codes, d, torch.tensor([1.0, -2.0]), layers=[1, 2])
    assert out[0, 1, 0] == 1 and out[1, 2, 0] == -2 and out[:, 0].abs().sum() == 0 and out[:, 3].abs().sum() == 0
    assert torch.equal(edit(codes[:, 0], d, 3.0)[:, 0], torch.full((2,), 3.0))
    path = interpolate(torch.zeros(4, 3), torch.ones(4, 3), 5)
    assert path.shape == (5, 4, 3) and torch.equal(path[0], torch.zeros(4, 3)) and path[2].mean() == 0.5


@pytest.mark.slow  # three direction fits on 1000-2000 samples: 38 s
def test_directions_command_on_the_toy_generator(tmp_path):
    """ganinv-directions writes loadable files; the InterFaceGAN smile direction raises the toy smile."""
    from hydra import compose, initialize_config_dir

    from ganinv.commands.directions import directions
    from ganinv.configs import CONF
    from ganinv.toy import AttributePredictor, load_generator

    paths = {}
    for kind, extra in (("sefa", []), ("ganspace", ["n_samples=2000"]),
                        ("interfacegan", ["attribute=smile", "n_samples=1000", "ratio=0.1"])):
        with initialize_config_dir(CONF, version_base=None):
            cfg = compose("directions", overrides=[f"kind={kind}", f"output={tmp_path / kind}.pt", *extra])
        paths[kind] = directions(cfg)
    g = load_generator()
    smile = load_directions(paths["interfacegan"], g)["smile"]
    w = g.get_latent(torch.randn(16, g.style_dim, generator=torch.Generator().manual_seed(3)))
    score = AttributePredictor("smile").eval()
    with torch.no_grad():
        lo, hi = (score(g([edit(w, smile, a)], input_is_latent=True, randomize_noise=False)[0]).mean()
                  for a in (-3.0, 3.0))
    assert hi - lo > 0.3, (lo, hi)
    assert len(load_directions(paths["sefa"], g).names) == g.style_dim
