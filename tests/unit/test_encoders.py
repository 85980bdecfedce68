"""Encoder networks: official key/shape manifests, fixture numerics, shapes, gradients and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from ganinv.checkpoints.official import build_encoder
from ganinv.encoders import (
    BackboneEncoder,
    BackboneEncoderUsingLastLayerIntoW,
    BackboneEncoderUsingLastLayerIntoWPlus,
    DomainGuidedEncoder,
    Encoder4Editing,
    GradualStyleEncoder,
    LatentCodesDiscriminator,
    ProgressiveBackboneEncoder,
    ResNetBackboneEncoder,
    ResNetProgressiveBackboneEncoder,
)
from ganinv.stylegan2 import Generator

TINY = {"widths": (16, 20, 24, 32), "style_dim": 64, "n_styles": 8}
CODES_ATOL = 1e-4


def _manifest(fixtures_dir, name):
    return json.loads((fixtures_dir / f"manifest_{name}.json").read_text())


def _shapes(module, prefix=""):
    return {prefix + k: list(v.shape) for k, v in module.state_dict().items()}


def _encoder_part(state_dict):
    return {k: v for k, v in state_dict.items() if k.startswith("encoder.")}


MANIFEST_CASES = [
    ("psp_ffhq_encode", None, GradualStyleEncoder, {}),
    ("e4e_ffhq_encode", None, Encoder4Editing, {}),
    ("restyle_ffhq_encode", "pSp/BackboneEncoder", BackboneEncoder, {}),
    ("restyle_ffhq_encode", "pSp/ResNetBackboneEncoder", ResNetBackboneEncoder, {}),
    ("restyle_ffhq_encode", "e4e/ProgressiveBackboneEncoder", ProgressiveBackboneEncoder, {}),
    ("restyle_ffhq_encode", "e4e/ResNetProgressiveBackboneEncoder", ResNetProgressiveBackboneEncoder, {}),
]


@pytest.mark.parametrize("manifest,section,cls,kwargs", MANIFEST_CASES)
def test_full_size_encoders_match_official_manifests(fixtures_dir, manifest, section, cls, kwargs):
    m = _manifest(fixtures_dir, manifest)
    m = m[section] if section else m
    with torch.device("meta"):
        enc = cls(**kwargs)  # official defaults: IR-SE50 / ResNet34, 256 px, 18 x 512-d styles
        g = Generator(1024, 512, 8, channel_multiplier=2)
    assert _shapes(enc, "encoder.") == _encoder_part(m["state_dict"])
    assert _shapes(g, "decoder.") == {k: v for k, v in m["state_dict"].items() if k.startswith("decoder.")}
    ints = {k for k, v in enc.state_dict().items() if v.dtype == torch.int64}
    assert {"encoder." + k for k in ints} == set(m["non_float32_keys"])
    assert sum(p.numel() for p in enc.parameters()) == m["encoder_num_params"]


@pytest.mark.parametrize("manifest,section", [("e4e_ffhq_encode", "discriminator"),
                                              ("restyle_ffhq_encode", "e4e_discriminator")])
def test_latent_discriminator_matches_manifest(fixtures_dir, manifest, section):
    expected = _manifest(fixtures_dir, manifest)[section]["state_dict"]
    assert _shapes(LatentCodesDiscriminator(512, 4)) == expected


@pytest.mark.parametrize("manifest,section,encoder_type", [
    ("psp_ffhq_encode", None, "GradualStyleEncoder"), ("e4e_ffhq_encode", None, "Encoder4Editing"),
    ("restyle_ffhq_encode", "pSp/BackboneEncoder", "BackboneEncoder"),
    ("restyle_ffhq_encode", "e4e/ResNetProgressiveBackboneEncoder", "ResNetProgressiveBackboneEncoder"),
])
def test_architecture_is_inferred_from_full_size_shapes(fixtures_dir, manifest, section, encoder_type):
    m = _manifest(fixtures_dir, manifest)
    m = m[section] if section else m
    sd = {k[len("encoder."):]: torch.empty(v, device="meta") for k, v in _encoder_part(m["state_dict"]).items()}
    with torch.device("meta"):
        enc = build_encoder(encoder_type, sd)
    assert _shapes(enc) == {k: list(v.shape) for k, v in sd.items()}
    assert enc.n_styles == 18 and enc.style_dim == 512


def _tiny_psp_state(fixtures_dir):
    sd = torch.load(fixtures_dir / "psp_tiny.pt", weights_only=True)["state_dict"]
    return {k[len("encoder."):]: v for k, v in sd.items()}


def test_psp_encoder_reproduces_fixture_features_and_codes(fixtures_dir):
    ref = torch.load(fixtures_dir / "psp_tiny_ref.pt", weights_only=True)
    enc = GradualStyleEncoder(**TINY).eval()
    enc.load_state_dict(_tiny_psp_state(fixtures_dir), strict=True)
    with torch.no_grad():
        c1, c2, c3 = enc.pyramid(ref["x"])
        codes = enc(ref["x"])
    torch.testing.assert_close(c3, ref["c3"], rtol=0, atol=CODES_ATOL)
    torch.testing.assert_close(c1.mean((2, 3)), ref["c1_channel_mean"], rtol=0, atol=CODES_ATOL)
    torch.testing.assert_close(c2.mean((2, 3)), ref["c2_channel_mean"], rtol=0, atol=CODES_ATOL)
    torch.testing.assert_close(codes, ref["codes_raw"], rtol=0, atol=CODES_ATOL)


def test_e4e_stages_follow_the_progressive_rule(fixtures_dir):
    """Stage S adds head i (i <= S) to w0; cross-checked against the pSp codes of the same weights."""
    ref = torch.load(fixtures_dir / "psp_tiny_ref.pt", weights_only=True)
    enc = Encoder4Editing(**TINY).eval()
    enc.load_state_dict(_tiny_psp_state(fixtures_dir), strict=True)
    s = ref["codes_raw"]
    for stage in (0, 2, 5, 18):
        enc.progressive_stage = stage
        with torch.no_grad():
            out = enc(ref["x"])
        expected = torch.stack([s[:, 0] + (s[:, i] if 1 <= i <= stage else 0) for i in range(8)], 1)
        torch.testing.assert_close(out, expected, rtol=0, atol=CODES_ATOL)
    assert Encoder4Editing(**TINY).progressive_stage >= 8  # default: every offset active


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("widths,dim,n", [((8, 8, 12, 16), 32, 6), ((16, 20, 24, 32), 64, 10)])
def test_output_shapes_for_sizes_and_widths(size, widths, dim, n):
    x = torch.randn(2, 3, size, size)
    y = torch.randn(2, 3, size, size)
    small = {"widths": widths, "style_dim": dim, "n_styles": n, "input_size": size}
    with torch.no_grad():
        for enc in (GradualStyleEncoder(**small), Encoder4Editing(**small)):
            assert enc.eval()(x).shape == (2, n, dim)
        for enc in (BackboneEncoder(**small), ResNetBackboneEncoder(**small),
                    ProgressiveBackboneEncoder(**small), ResNetProgressiveBackboneEncoder(**small)):
            assert enc.eval()(torch.cat([x, y], 1)).shape == (2, n, dim)
        w = BackboneEncoderUsingLastLayerIntoW(widths=widths, style_dim=dim, input_size=size).eval()
        assert w(x).shape == (2, dim)
        wp = BackboneEncoderUsingLastLayerIntoWPlus(widths=widths, style_dim=dim, n_styles=n, input_size=size).eval()
        assert wp(x).shape == (2, n, dim)
        idi = DomainGuidedEncoder(size, n_styles=n, style_dim=dim, channel_base=8, channel_max=32).eval()
        assert idi(x).shape == (2, n, dim)


def test_domain_guided_encoder_default_style_count_and_ir_depths():
    assert DomainGuidedEncoder(64, channel_base=4, channel_max=8, style_dim=8).n_styles == 10  # 2 log2(64) - 2
    with torch.device("meta"):
        for depth, units in ((50, 24), (100, 49), (152, 50)):
            assert len(GradualStyleEncoder(num_layers=depth, widths=(8, 8, 8, 8), style_dim=8).body) == units


def test_every_encoder_refuses_another_input_size():
    """One rule: smaller and larger inputs alike are refused, naming both sizes; callers resize."""
    small = {"widths": (8, 8, 12, 16), "style_dim": 16, "n_styles": 4, "input_size": 64}
    encoders = [GradualStyleEncoder(**small), Encoder4Editing(**small), BackboneEncoder(**small),
                ResNetBackboneEncoder(**small), ProgressiveBackboneEncoder(**small),
                ResNetProgressiveBackboneEncoder(**small),
                BackboneEncoderUsingLastLayerIntoW(widths=(8, 8, 12, 16), style_dim=16, input_size=64),
                BackboneEncoderUsingLastLayerIntoWPlus(**small),
                DomainGuidedEncoder(64, channel_base=4, channel_max=8)]
    for enc in encoders:
        channels = enc.input_layer[0].in_channels if hasattr(enc, "input_layer") else 3 if not hasattr(
            enc, "conv1") else enc.conv1.in_channels
        for size in (32, 128):
            with pytest.raises(ValueError, match=f"takes 64x64 inputs \\(input_size=64\\), got {size}x{size}"):
                enc.eval()(torch.randn(1, channels, size, size))
    with pytest.raises(ValueError, match="num_layers"):
        GradualStyleEncoder(num_layers=34)


def test_gradients_reach_the_encoder_and_never_the_frozen_generator(tiny_generator):
    x = torch.randn(2, 3, 32, 32)
    small = {"widths": (8, 8, 12, 16), "style_dim": 64, "n_styles": 8, "input_size": 32}
    for enc in (GradualStyleEncoder(**small), Encoder4Editing(**small),
                DomainGuidedEncoder(32, n_styles=8, style_dim=64, channel_base=8, channel_max=16)):
        codes = enc.train()(x) + tiny_generator.latent_avg
        img, _ = tiny_generator([codes], input_is_latent=True, randomize_noise=False)
        img.square().mean().backward()
        assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)
        assert any(p.grad.abs().sum() > 0 for p in enc.parameters())
        assert all(p.grad is None for p in tiny_generator.parameters())


