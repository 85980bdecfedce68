"""Official pSp / e4e / ReStyle checkpoints through `load_official`: every tiny fixture reproduced, bad files refused.

The fixture files hold the encoder parts only (see tests/fixtures/README.md); the complete official checkpoints are
assembled here as the official trainers would save them: `encoder.*` + `decoder.*` (= rosinality_tiny `g_ema`),
`latent_avg`, `opts` and, for e4e, the latent discriminator. Tolerances are the fixture README's (rtol=0).
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganinv.checkpoints import CheckpointError, load_official
from ganinv.encoders import (
    BackboneEncoder,
    Encoder4Editing,
    GradualStyleEncoder,
    LatentCodesDiscriminator,
    ProgressiveBackboneEncoder,
    ResNetBackboneEncoder,
    ResNetProgressiveBackboneEncoder,
)
from ganinv.methods import load_method
from ganinv.stylegan2 import Generator
from tests.fixtures import examples

MAPPING_ATOL = 1e-5  # mapped w: pure matmuls
CODES_ATOL = 1e-4  # encoder codes (pSp, e4e, ReStyle step outputs)
IMAGES_ATOL = 3e-4  # encoder -> decoder images (values up to 27)
RESTYLE_LATENTS_ATOL, RESTYLE_IMAGES_ATOL = 1e-4, 3e-4  # ReStyle 3-step loop
LOGITS_ATOL = 1e-5  # latent discriminator

RESTYLE = {  # prefix in restyle_tiny_ref.pt -> (fixture file, official encoder_type, class, kind)
    "psp_irse": ("restyle_irse_tiny.pt", "BackboneEncoder", BackboneEncoder, "restyle_psp"),
    "e4e_irse": ("restyle_irse_tiny.pt", "ProgressiveBackboneEncoder", ProgressiveBackboneEncoder, "restyle_e4e"),
    "psp_resnet": ("restyle_resnet_tiny.pt", "ResNetBackboneEncoder", ResNetBackboneEncoder, "restyle_psp"),
    "e4e_resnet": ("restyle_resnet_tiny.pt", "ResNetProgressiveBackboneEncoder", ResNetProgressiveBackboneEncoder,
                   "restyle_e4e"),
}


def _load(fixtures_dir, name):
    return torch.load(fixtures_dir / name, weights_only=True)


@pytest.fixture(scope="module")
def refs(fixtures_dir):
    return {name: _load(fixtures_dir, f"{name}_tiny_ref.pt") for name in ("psp", "e4e", "restyle")}


@pytest.fixture(scope="module")
def rosinality(fixtures_dir):
    return _load(fixtures_dir, "rosinality_tiny.pt")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Complete official checkpoints (with `decoder.*`), written once: name -> path."""
    paths = examples.official_checkpoints(tmp_path_factory.mktemp("official"))
    return {"psp": paths["psp"], "e4e": paths["e4e"], **{k: paths[f"restyle_{k}"] for k in RESTYLE}}


def _inputs(ref: dict) -> torch.Tensor:
    """A fixture's input images in [-1, 1] (the larger ones are stored as 8-bit pixels)."""
    return ref["x"] if "x" in ref else ref["x_u8"].float() / 127.5 - 1


def _assert_inverts_and_edits_as(module, ref: dict, base: torch.Tensor | None = None):
    """The inversion's codes, its image and an edit's image equal a feature-space fixture's (`base`: SFE's e4e codes
    for the edit's feature delta); the inversion."""
    from ganinv.editing import edit

    inv = module.invert(_inputs(ref))
    if base is not None:
        inv.extra["base"] = base
    assert_close(inv.codes, ref["codes"], rtol=0, atol=CODES_ATOL)
    assert_close(module.reconstruct(inv), ref["image"], rtol=1e-4, atol=IMAGES_ATOL)
    assert_close(module.reconstruct(edit(inv, ref["direction"], ref["alpha"])), ref["edited"], rtol=1e-4,
                 atol=IMAGES_ATOL)
    return inv


def _assert_eval(module):
    assert not any(m.training for m in module.modules())


def _assert_generator_is_the_decoder(g, rosinality):
    assert isinstance(g, Generator) and g.n_latent == 8 and g.style_dim == 64
    sd = g.state_dict()
    assert sd.keys() == rosinality["g_ema"].keys()
    assert all(torch.equal(sd[k], v) for k, v in rosinality["g_ema"].items())
    assert torch.equal(g.latent_avg, rosinality["latent_avg"])
    _assert_eval(g)


def test_psp_checkpoint_reproduces_codes_and_images(fixtures_dir, checkpoints, refs, rosinality):
    ref = refs["psp"]
    m = load_official(checkpoints["psp"])
    assert m.kind == "psp" and type(m.encoder) is GradualStyleEncoder and m.discriminator is None
    assert m.opts == _load(fixtures_dir, "psp_tiny.pt")["opts"]
    assert torch.equal(m.latent_avg, rosinality["latent_avg"].expand(8, -1))
    _assert_eval(m.encoder)
    _assert_generator_is_the_decoder(m.generator, rosinality)
    with torch.no_grad():
        raw = m.encoder(ref["x"])
        codes = raw + m.latent_avg  # start_from_latent_avg, as the official pSp.forward
        images, _ = m.generator([codes], input_is_latent=True, randomize_noise=False)
    assert_close(raw, ref["codes_raw"], rtol=0, atol=CODES_ATOL)
    assert_close(codes, ref["codes"], rtol=0, atol=CODES_ATOL)
    assert_close(images, ref["images_32"], rtol=0, atol=IMAGES_ATOL)


def test_encoder_only_file_uses_the_given_generator(fixtures_dir, tiny_generator):
    path = fixtures_dir / "psp_tiny.pt"  # no decoder.* keys
    bare = load_official(path)
    assert bare.generator is None and bare.kind == "psp"
    assert torch.equal(bare.latent_avg, _load(fixtures_dir, "psp_tiny.pt")["latent_avg"])
    assert load_official(path, generator=tiny_generator).generator is tiny_generator
    wrong = Generator(16, 64, 2, channel_max=64)  # 6 styles, the encoder predicts 8
    with pytest.raises(CheckpointError, match="predicts 8 styles but the generator has 6"):
        load_official(path, generator=wrong)


def test_e4e_checkpoint_reproduces_stages_and_discriminator(checkpoints, refs, rosinality):
    ref, x = refs["e4e"], refs["psp"]["x"]
    m = load_official(checkpoints["e4e"])
    assert m.kind == "e4e" and type(m.encoder) is Encoder4Editing
    progressive_stage = m.encoder.progressive_stage
    assert type(progressive_stage) is int and progressive_stage >= m.encoder.n_styles - 1  # all offsets active
    assert torch.equal(m.latent_avg, rosinality["latent_avg"].expand(8, -1))
    _assert_eval(m.encoder)
    _assert_generator_is_the_decoder(m.generator, rosinality)
    assert ref["progressive_stages"].tolist() == [0, 4, 18]
    for stage in (0, 4, 18):
        m.encoder.progressive_stage = stage
        with torch.no_grad():
            raw = m.encoder(x)
            codes = raw + m.latent_avg
            images, _ = m.generator([codes], input_is_latent=True, randomize_noise=False)
        assert_close(raw, ref[f"codes_raw_stage{stage}"], rtol=0, atol=CODES_ATOL, msg=f"stage {stage}")
        assert_close(codes, ref[f"codes_stage{stage}"], rtol=0, atol=CODES_ATOL, msg=f"stage {stage}")
        assert_close(images, ref[f"images_32_stage{stage}"], rtol=0, atol=IMAGES_ATOL, msg=f"stage {stage}")

    d = m.discriminator
    assert type(d) is LatentCodesDiscriminator
    _assert_eval(d)
    with torch.no_grad():
        w_real = m.generator.get_latent(ref["z_for_w_real"])
        assert_close(w_real, ref["w_real"], rtol=0, atol=MAPPING_ATOL)
        assert_close(d(ref["w_real"]), ref["d_real"], rtol=0, atol=LOGITS_ATOL)
        assert_close(d(ref["w_fake"]), ref["d_fake"], rtol=0, atol=LOGITS_ATOL)


@pytest.mark.parametrize("prefix", list(RESTYLE))
def test_restyle_checkpoints_reproduce_the_three_step_loop(prefix, checkpoints, refs, rosinality):
    _, _, cls, kind = RESTYLE[prefix]
    ref, x = refs["restyle"], refs["psp"]["x"]
    m = load_official(checkpoints[prefix])
    assert m.kind == kind and type(m.encoder) is cls and m.discriminator is None
    progressive = kind == "restyle_e4e"
    stage = getattr(m.encoder, "progressive_stage", None)
    assert (type(stage) is int and stage >= m.encoder.n_styles - 1) if progressive else stage is None
    _assert_eval(m.encoder)
    _assert_generator_is_the_decoder(m.generator, rosinality)
    n_iters = int(ref["n_iters"])
    with torch.no_grad():
        avg_image, _ = m.generator([m.latent_avg.unsqueeze(0)], input_is_latent=True, randomize_noise=False)
        steps = load_method(checkpoints[prefix]).invert_steps(x, n_iters)  # the loop users run
    assert_close(avg_image[0], ref[f"{prefix}/avg_image_32"], rtol=0, atol=RESTYLE_IMAGES_ATOL)
    assert len(steps) == n_iters == 3
    for t, step in enumerate(steps):
        assert_close(step.delta, ref[f"{prefix}/encoder_out"][t], rtol=0, atol=CODES_ATOL, msg=f"step {t}")
        assert_close(step.latent, ref[f"{prefix}/latents"][t], rtol=0, atol=RESTYLE_LATENTS_ATOL, msg=f"step {t}")
        assert_close(step.image, ref[f"{prefix}/images_32"][t], rtol=0, atol=RESTYLE_IMAGES_ATOL, msg=f"step {t}")
    if progressive:  # iteration 0 at stage 0: w0 only; the 32-px average image is fed back 8x replicated
        avg_256 = ref[f"{prefix}/avg_image_32"].repeat_interleave(8, -1).repeat_interleave(8, -2)
        m.encoder.progressive_stage = 0
        with torch.no_grad():
            out = m.encoder(torch.cat([x, avg_256.expand(x.shape[0], -1, -1, -1)], dim=1))
        assert_close(out, ref[f"{prefix}/encoder_out_iter0_stage0"], rtol=0, atol=CODES_ATOL)


def test_kind_is_inferred_when_opts_lack_encoder_type(fixtures_dir, tmp_path):
    for name, kind in (("psp_tiny.pt", "psp"), ("restyle_resnet_tiny.pt", "restyle_psp")):
        raw = _load(fixtures_dir, name)
        raw["opts"] = {k: v for k, v in raw["opts"].items() if k != "encoder_type"}
        torch.save(raw, tmp_path / name)
        assert load_official(tmp_path / name).kind == kind


# ---- bad files: one CheckpointError naming the file and the offending key -----------------------------------------


def _write_psp(fixtures_dir, tmp_path, edit):
    raw = _load(fixtures_dir, "psp_tiny.pt")
    edit(raw)
    path = tmp_path / "edited_psp.pt"
    torch.save(raw, path)
    return path


def _error(path):
    with pytest.raises(CheckpointError) as info:
        load_official(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_unexpected_encoder_key_is_named(fixtures_dir, tmp_path):
    path = _write_psp(fixtures_dir, tmp_path, lambda raw: raw["state_dict"].update(
        {"encoder.extra_head.weight": torch.zeros(3)}))
    message = _error(path)
    assert "unexpected keys" in message and "'encoder.extra_head.weight'" in message


def test_key_outside_encoder_and_decoder_is_named(fixtures_dir, tmp_path):
    path = _write_psp(fixtures_dir, tmp_path, lambda raw: raw["state_dict"].update({"mapper.weight": torch.zeros(3)}))
    assert "'mapper.weight'" in _error(path)


def test_missing_encoder_key_is_named(fixtures_dir, tmp_path):
    path = _write_psp(fixtures_dir, tmp_path, lambda raw: raw["state_dict"].pop("encoder.latlayer1.bias"))
    message = _error(path)
    assert "missing keys" in message and "'encoder.latlayer1.bias'" in message


def test_wrong_shape_is_named_with_both_shapes(fixtures_dir, tmp_path):
    def edit(raw):
        raw["state_dict"]["encoder.latlayer2.weight"] = torch.zeros(32, 24, 1, 1)  # official tiny: [32, 20, 1, 1]

    message = _error(_write_psp(fixtures_dir, tmp_path, edit))
    assert "shape mismatches" in message and "encoder.latlayer2.weight:" in message
    assert "(32, 24, 1, 1)" in message and "(32, 20, 1, 1)" in message


def test_unknown_encoder_type_is_named(fixtures_dir, tmp_path):
    path = _write_psp(fixtures_dir, tmp_path, lambda raw: raw["opts"].update({"encoder_type": "StyleTransformer"}))
    message = _error(path)
    assert "encoder_type" in message and "'StyleTransformer'" in message and "GradualStyleEncoder" in message


def test_bad_decoder_and_discriminator_keys_are_named(checkpoints, tmp_path):
    raw = torch.load(checkpoints["e4e"], weights_only=True)
    raw["state_dict"]["decoder.extra_noise"] = torch.zeros(1)
    torch.save(raw, tmp_path / "bad_decoder.pt")
    assert "extra_noise" in _error(tmp_path / "bad_decoder.pt")

    raw = torch.load(checkpoints["e4e"], weights_only=True)
    raw["discriminator_state_dict"]["mlp.0.scale"] = torch.ones(1)
    torch.save(raw, tmp_path / "bad_discriminator.pt")
    message = _error(tmp_path / "bad_discriminator.pt")
    assert "discriminator" in message and "'mlp.0.scale'" in message


def test_encoder_only_fixture_without_state_dict_is_refused(fixtures_dir):
    # e4e_tiny.pt stores the discriminator, latent_avg and opts only (its encoder weights are psp_tiny's).
    assert "state_dict" in _error(fixtures_dir / "e4e_tiny.pt")


def test_hyperstyle_keys_and_shapes_are_the_official_ones(fixtures_dir):
    """The hypernetwork at the official size (1024-px generator, the README's layers) has exactly the keys and
    shapes of the official `SharedWeightsHyperNetResNet` (manifest written by running the official code)."""
    import json

    from ganinv.encoders.hyperstyle import SharedWeightsHyperNetResNet
    from ganinv.methods.hyperstyle import modulated_layers

    manifest = json.loads((fixtures_dir / "manifest_hyperstyle_ffhq.json").read_text())["state_dict"]
    with torch.device("meta"):  # shapes only: 330 M parameters never allocated
        g = Generator(1024, 512, 8, channel_multiplier=2)
        tune = [0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24]
        net = SharedWeightsHyperNetResNet([spec for _, spec in modulated_layers(g)], tune, input_nc=6)
    ours = {f"hypernet.{k}": list(v.shape) for k, v in net.state_dict().items()}
    ours |= {f"decoder.{k}": list(v.shape) for k, v in g.state_dict().items()}
    assert ours == manifest
    assert net.shared_layers == [0, 2, 3, 5, 6, 8, 9, 11, 12]


def test_load_method_reads_an_official_hyperstyle_file_on_its_base(checkpoints, tmp_path):
    from ganinv.checkpoints import CheckpointError
    from ganinv.encoders.hyperstyle import SharedWeightsHyperNetResNet
    from ganinv.methods import HyperStyleModule, load_method
    from ganinv.methods.hyperstyle import modulated_layers

    base = load_method(checkpoints["e4e"])
    g = base.generator
    torch.manual_seed(0)
    net = SharedWeightsHyperNetResNet([spec for _, spec in modulated_layers(g)], [0, 2, 3, 5], input_nc=6,
                                      widths=[8, 8, 12, 16], input_size=32, hyper_dim=16)
    sd = {**{f"hypernet.{k}": v for k, v in net.state_dict().items()},
          **{f"decoder.{k}": v for k, v in g.state_dict().items()}}
    opts = {"layers_to_tune": "0,2,3,5", "n_iters_per_batch": 2, "output_size": g.size,
            "w_encoder_checkpoint_path": "pretrained_models/faces_w_encoder.pt"}
    torch.save({"state_dict": sd, "opts": opts, "latent_avg": g.latent_avg}, tmp_path / "hyperstyle.pt")
    with pytest.raises(CheckpointError, match="base=.*faces_w_encoder"):
        load_method(tmp_path / "hyperstyle.pt")
    module = load_method(tmp_path / "hyperstyle.pt", base=checkpoints["e4e"])
    assert isinstance(module, HyperStyleModule) and module.n_iters == 2 and not module.training
    direct = HyperStyleModule(generator=g, encoder=net, base=base, input_nc=3, input_size=32,
                              layers_to_tune=[0, 2, 3, 5], n_iters_per_batch=2).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    ours, theirs = module.invert(x), direct.invert(x)
    assert sorted(ours.offsets) == ["conv1.conv.weight", "convs.0.conv.weight", "convs.1.conv.weight",
                                    "convs.2.conv.weight"]
    torch.testing.assert_close(ours.codes, base.invert(x).codes, rtol=0, atol=0)
    for k in ours.offsets:
        torch.testing.assert_close(ours.offsets[k], theirs.offsets[k], rtol=0, atol=1e-6)


def test_an_official_e4e_is_a_base_that_checkpoints_keep(checkpoints, tmp_path):
    """HFGI on the official e4e file: the base's architecture (from its weights) and weights travel in the run's
    checkpoint, which rebuilds the same module."""
    from ganinv.methods import HFGIModule, load_method

    base = load_method(checkpoints["e4e"])
    module = HFGIModule(generator=base.generator, base=base, input_size=32,
                        encoder={"residue_widths": [8, 8, 12], "align_widths": [8, 8, 8, 8]}).eval()
    torch.save({"ganinv": {"method": "HFGIModule"}, "state_dict": module.state_dict(),
                "hyper_parameters": dict(module.hparams)}, tmp_path / "run.ckpt")
    again = load_method(tmp_path / "run.ckpt")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(again.reconstruct(again.invert(x)), module.reconstruct(module.invert(x)), rtol=0,
                               atol=1e-6)
    torch.testing.assert_close(again.invert(x).codes, base.invert(x).codes, rtol=0, atol=0)


def test_sfe_keys_and_shapes_are_the_official_ones(fixtures_dir):
    """SFE's trained parts at the official size (IResNet-50 backbone, 18 W+ layers of 512, 512-channel features)
    have exactly the keys and shapes of the official `Inverter` and feature editor (manifest written by running
    the official modules)."""
    import json

    from ganinv.encoders.feature_style import SFENets

    manifest = json.loads((fixtures_dir / "manifest_sfe_ffhq.json").read_text())
    with torch.device("meta"):
        nets = SFENets(18, 512, 512)
    sd = nets.state_dict()
    assert {k[len("editor."):]: list(v.shape) for k, v in sd.items() if k.startswith("editor.")} == manifest["encoder"]
    assert {k: list(v.shape) for k, v in sd.items() if not k.startswith("editor.")} == manifest["inverter"]


def test_load_method_reads_an_official_sfe_file_and_edits_as_its_code(fixtures_dir, checkpoints, rosinality,
                                                                      tmp_path):
    """An official SFE file on its generator and e4e: the inverter's codes and fused features, the inversion's image
    and an edit's (the feature editor given the edit's change of e4e's features) equal the official modules' on
    the tiny fixture (sfe_tiny_ref.pt: FSEFull's forward and its editing runner, features at the 8-px block)."""
    from ganinv.methods import SFEModule

    ref = _load(fixtures_dir, "sfe_tiny_ref.pt")
    path = examples.sfe_checkpoint(tmp_path / "sfe.pt")
    with pytest.raises(CheckpointError, match="base= .e4e_ffhq_encode.pt"):
        load_method(path)
    g = load_method(checkpoints["e4e"]).generator
    module = load_method(path, generator=g, base=checkpoints["e4e"])
    assert isinstance(module, SFEModule) and module.resolution == 8 and not module.training
    inv = _assert_inverts_and_edits_as(module, ref, base=ref["w_e4e"])  # e4e's codes as the fixture gave them
    assert_close(inv.extra["fused"], ref["fused"], rtol=1e-4, atol=CODES_ATOL)


def test_load_method_reads_the_released_feature_style_encoder_and_edits_as_its_code(fixtures_dir, checkpoints,
                                                                                  tmp_path):
    """The released Feature-Style encoder (143_enc.pth's layout; its keys and shapes at full size are the official
    `fs_encoder_v2`'s) on its generator: codes, features at 1/16 of the 256-px input, the image and a latent edit's
    (the features moved by the generator's own change, as its video editing) equal the official modules' on the tiny
    fixture (feature_style_tiny_ref.pt)."""
    import json

    from ganinv.encoders.feature_style import FeatureStyleBackbone
    from ganinv.methods import FeatureStyleModule

    manifest = json.loads((fixtures_dir / "manifest_feature_style_ffhq.json").read_text())
    with torch.device("meta"):
        full = FeatureStyleBackbone(18, 512, 512)
    assert {k: list(v.shape) for k, v in full.state_dict().items()} == manifest
    ref = _load(fixtures_dir, "feature_style_tiny_ref.pt")
    path = examples.feature_style_checkpoint(tmp_path / "143_enc.pth")
    with pytest.raises(CheckpointError, match="holds no generator"):
        load_method(path)
    module = load_method(path, generator=load_method(checkpoints["e4e"]).generator)
    assert isinstance(module, FeatureStyleModule) and module.resolution == 16 and not module.training
    _assert_inverts_and_edits_as(module, ref)


def test_load_method_reads_the_released_styleres_file_and_edits_as_its_code(fixtures_dir, tmp_path):
    """The released StyleRes checkpoint (its modules' keys and shapes at full size are the official generator's
    `synthesis.b64.modify_feature_*`, less the `dconv3` it never applies): e4e's codes, the image with the residual
    features and an edit's (E1 on the codes as inverted, E2 on the edited ones) equal the official
    `StyleRes.edit_images` on the tiny fixture (styleres_tiny_ref.pt)."""
    import json

    from ganinv.encoders.styleres import StyleResNets
    from ganinv.methods import StyleResModule

    manifest = json.loads((fixtures_dir / "manifest_styleres_ffhq.json").read_text())
    with torch.device("meta"):
        nets = StyleResNets(128, 512, 512)
    official = {k[len("synthesis.b64."):]: v for k, v in manifest.items() if ".dconv3." not in k}
    assert {k: list(v.shape) for k, v in nets.state_dict().items()} == official
    ref = _load(fixtures_dir, "styleres_tiny_ref.pt")
    module = load_method(examples.styleres_checkpoint(tmp_path / "styleres_ffhq.pt"))
    assert isinstance(module, StyleResModule) and module.resolution == 64 and not module.training
    _assert_inverts_and_edits_as(module, ref)
