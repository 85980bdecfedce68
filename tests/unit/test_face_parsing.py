"""The face parser for real photos (`refine.parser=bisenet`): face-parsing.PyTorch's BiSeNet, its released key
layout, its numerics against the official code (tests/fixtures: `bisenet_tiny_ref.pt`), and DHR reading it."""

from __future__ import annotations

import json

import pytest
import torch

from ganinv.errors import CheckpointError
from ganinv.losses import MeanDistance
from ganinv.methods import AverageCode, ConfigError
from ganinv.refine import DomainSpecificHybridRefinement, build_refiner
from ganinv.refine.dhr import KINDS
from ganinv.refine.face_parsing import CELEBAMASK_LABELS, BiSeNet, BiSeNetParser, face_parser
from ganinv.toy import load_generator, load_perceptual_net, render
from tests.commands import composed
from tests.fixtures.examples import FIXTURES, seeded


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("bisenet") / "79999_iter.pth"
    torch.save(seeded(BiSeNet().state_dict()), path)
    return path


def test_bisenet_has_the_released_key_layout():
    manifest = json.loads((FIXTURES / "manifest_bisenet_79999.json").read_text())
    assert {k: list(v.shape) for k, v in BiSeNet().state_dict().items()} == manifest


def test_bisenet_reproduces_the_official_network(weights):
    ref = torch.load(FIXTURES / "bisenet_tiny_ref.pt", weights_only=True)
    net = BiSeNetParser.from_file(weights).net
    with torch.no_grad():
        logits = net(ref["input"])
    torch.testing.assert_close(logits, ref["logits"], rtol=0, atol=1e-5)


def test_the_parser_labels_images_at_their_size_and_refuses_other_files(weights, tmp_path):
    parser = face_parser("bisenet", weights)
    labels = parser(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert labels.shape == (2, 64, 64) and labels.dtype == torch.int64 and int(labels.max()) < 19
    assert parser.labels == CELEBAMASK_LABELS and set(CELEBAMASK_LABELS) <= set(KINDS)
    with pytest.raises(CheckpointError, match="79999_iter.pth .*is missing"):
        face_parser("bisenet", tmp_path / "79999_iter.pth")
    wrong = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError, match="other.pth.*not face-parsing.PyTorch's BiSeNet.*missing keys"):
        face_parser("bisenet", wrong)
    with pytest.raises(ValueError, match="refine.parser_weights"):
        face_parser("bisenet")


def test_dhr_segments_with_bisenet_and_names_it_for_real_generators(weights, tiny_generator):
    start, net = AverageCode(load_generator()).eval(), MeanDistance(load_perceptual_net())
    dhr = DomainSpecificHybridRefinement(start, net, parser="bisenet", parser_weights=str(weights), coarse_steps=2)
    x = render(2, 64, seed=3).images
    labels, mask = dhr.parser(x), dhr.segment(x)
    out = torch.isin(labels, torch.tensor([CELEBAMASK_LABELS.index(k) for k, v in KINDS.items()
                                           if v == "out" and k in CELEBAMASK_LABELS]))
    assert mask.shape == (2, 1, 64, 64) and float(mask[:, 0][out].sum()) == 0
    with pytest.raises(ValueError, match="refine.parser=bisenet refine.parser_weights"):
        DomainSpecificHybridRefinement(AverageCode(tiny_generator), net)
    node = composed("eval", "refine=dhr", "refine.parser=bisenet").refine
    with pytest.raises(ConfigError, match="needs refine.parser_weights"):
        build_refiner(node, start, net)
