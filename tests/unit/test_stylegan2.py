"""The generator and discriminator reproduce the official implementations' outputs and key layouts."""

from __future__ import annotations

import json

import pytest
import torch
from torch.testing import assert_close

from ganinv.checkpoints import load_generator
from ganinv.stylegan2 import Discriminator, Generator

# Tolerances from the fixtures' README (float32 vs float64 reruns of the official code are ~1e-5 apart).
ATOL_MAP, ATOL_IMG = 1e-5, 1e-4


@pytest.fixture(scope="module")
def rosinality(fixtures_dir):
    g = load_generator(fixtures_dir / "rosinality_tiny.pt")
    ref = torch.load(fixtures_dir / "rosinality_tiny_ref.pt", weights_only=True)
    noise = [ref[f"noise_{i}"] for i in range(int(ref["num_noise_layers"]))]
    return g, ref, noise


@pytest.fixture(scope="module")
def nvidia(fixtures_dir):
    g = load_generator(fixtures_dir / "nvidia_tiny.pt")
    return g, torch.load(fixtures_dir / "nvidia_tiny_ref.pt", weights_only=True)


def close(actual, expected, atol=ATOL_IMG):
    assert_close(actual, expected, rtol=0, atol=atol)


def test_rosinality_mapping_and_z_input(rosinality):
    g, ref, noise = rosinality
    assert g.n_latent == int(ref["n_latent"]) and g.num_layers == len(noise)
    close(g.get_latent(ref["z"]), ref["w"], ATOL_MAP)
    img, latent = g([ref["z"]], noise=noise, randomize_noise=False, return_latents=True)
    close(img, ref["img_z_noise"])
    close(latent, ref["latent_z"], ATOL_MAP)
    close(g([ref["z"]], noise=None, randomize_noise=False)[0], ref["img_z_buffer_noise"])


def test_rosinality_w_and_wplus_input(rosinality):
    g, ref, noise = rosinality
    img, latent = g([ref["wplus"]], input_is_latent=True, noise=noise, return_latents=True)
    close(img, ref["img_wplus_noise"])
    close(latent, ref["latent_wplus"], ATOL_MAP)
    close(g([ref["w"]], input_is_latent=True, noise=noise)[0], ref["img_w_noise"])


def test_rosinality_truncation_and_style_mixing(rosinality, fixtures_dir):
    g, ref, noise = rosinality
    latent_avg = torch.load(fixtures_dir / "rosinality_tiny.pt", weights_only=True)["latent_avg"]
    img, latent = g([ref["z"]], truncation=float(ref["truncation"]), truncation_latent=latent_avg, noise=noise,
                    return_latents=True)
    close(img, ref["img_trunc07_noise"])
    close(latent, ref["latent_trunc07"], ATOL_MAP)
    img, latent = g([ref["z"], ref["z2"]], inject_index=int(ref["inject_index"]), noise=noise, return_latents=True)
    close(img, ref["img_mix_noise"])
    close(latent, ref["latent_mix"], ATOL_MAP)


def test_nvidia_mapping_and_truncation(nvidia):
    g, ref = nvidia
    ws = g.get_latent(ref["z"]).unsqueeze(1).repeat(1, int(ref["num_ws"]), 1)
    psi, cutoff = float(ref["truncation_psi"]), int(ref["truncation_cutoff"])
    close(ws, ref["ws_psi1"], ATOL_MAP)
    close(g.truncate(ws, psi), ref["ws_psi07"], ATOL_MAP)
    close(g.truncate(ws, psi, cutoff=cutoff), ref["ws_psi07_cutoff4"], ATOL_MAP)


def test_nvidia_images(nvidia):
    g, ref = nvidia
    close(g([ref["z"]], randomize_noise=False)[0], ref["img_psi1_const"])
    close(g([ref["z"]], randomize_noise=False, truncation=float(ref["truncation_psi"]))[0], ref["img_psi07_const"])
    close(g([ref["ws_psi07_cutoff4"]], input_is_latent=True, randomize_noise=False)[0],
          ref["img_psi07_cutoff4_const"])
    close(g([ref["ws_given"]], input_is_latent=True, randomize_noise=False)[0], ref["img_ws_given_const"])
    no_noise = [torch.zeros_like(n) for n in g.make_noise()]
    close(g([ref["ws_given"]], input_is_latent=True, noise=no_noise)[0], ref["img_ws_given_none"])


def shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("size", [1024, 256])
def test_full_size_manifests(fixtures_dir, size):
    manifest = json.loads((fixtures_dir / "manifest_rosinality_g_1024.json").read_text())
    with torch.device("meta"):
        g, d = Generator(size, 512, 8, channel_multiplier=2), Discriminator(size, channel_multiplier=2)
    expected = manifest[f"Generator({size}, 512, 8, channel_multiplier=2)"]
    assert shapes(g) == expected["state_dict"]  # same keys, same order, same shapes
    assert list(g.state_dict()) == list(expected["state_dict"])
    assert g.n_latent == expected["n_latent"] and g.num_layers == expected["num_layers(noise inputs)"]
    assert sum(p.numel() for p in g.parameters()) == expected["num_params"]
    assert shapes(d) == manifest[f"Discriminator({size}, channel_multiplier=2)"]["state_dict"]


def test_style_mixing_uses_each_code_on_its_layers(tiny_generator):
    g = tiny_generator
    z1, z2 = torch.randn(2, 64), torch.randn(2, 64)
    _, latent = g([z1, z2], inject_index=3, return_latents=True)
    assert_close(latent[:, :3], g.get_latent(z1).unsqueeze(1).expand(-1, 3, -1))
    assert_close(latent[:, 3:], g.get_latent(z2).unsqueeze(1).expand(-1, g.n_latent - 3, -1))


def test_generator_api_shapes_and_gradients(tiny_generator):
    g = tiny_generator
    assert g.n_latent == 8 and len(g.make_noise()) == g.num_layers == 7
    assert g.mean_latent(64).shape == (1, 64)
    codes = g.latent_avg.repeat(3, g.n_latent, 1).requires_grad_(True)
    img, _ = g([codes], input_is_latent=True)
    assert img.shape == (3, 3, 32, 32)
    img.square().mean().backward()
    assert codes.grad is not None and codes.grad.abs().sum() > 0
    assert all(p.grad is None for p in g.parameters())  # frozen generator
    with pytest.raises(ValueError, match="W\\+ code has 5 layers"):
        g([codes[:, :5]], input_is_latent=True)


def test_features_at_are_the_features_the_hooks_change(tiny_generator):
    """`features_at(codes, r)` are the features the `features` hook sees at r (replacing them by themselves keeps
    the image; by zeros does not), `features_at(codes, r, "up")` those the `conditions` hook sees."""
    g = tiny_generator
    codes = g.latent_avg.repeat(2, g.n_latent, 1) + 0.3 * torch.randn(2, g.n_latent, g.style_dim)
    image = g([codes], input_is_latent=True, randomize_noise=False)[0]
    block, up = g.features_at(codes, 8), g.features_at(codes, 16, "up")
    assert block.shape == (2, g.channels[8], 8, 8) and up.shape == (2, g.channels[16], 16, 16)
    ones = torch.ones_like(block[:, :1])
    for features, same in ((torch.cat([0 * ones, block], 1), True), (torch.cat([0 * ones, 0 * block], 1), False)):
        assert torch.equal(g([codes], input_is_latent=True, randomize_noise=False, features={8: features})[0],
                           image) == same
    replaced = g([codes], input_is_latent=True, randomize_noise=False, conditions={16: (-torch.ones_like(up), up)})[0]
    assert torch.equal(replaced, image)
    with pytest.raises(ValueError, match="no up features at 4 px"):
        g.features_at(codes, 4, "up")


def test_random_noise_changes_output_and_fixed_noise_does_not(tiny_generator):
    g = tiny_generator
    for name, p in g.named_parameters():
        if name.endswith("noise.weight"):
            p.fill_(0.1)  # a fresh generator starts with zero noise strength
    z = torch.randn(2, 64)
    a, b = g([z])[0], g([z])[0]
    assert (a - b).abs().max() > 1e-4
    assert_close(g([z], randomize_noise=False)[0], g([z], randomize_noise=False)[0])


def test_discriminator_shapes_and_odd_batches():
    d = Discriminator(32, channel_max=64)
    for batch in (1, 3, 4, 6):
        assert d(torch.randn(batch, 3, 32, 32)).shape == (batch, 1)


def test_conv_clamp_bounds_every_layer(tiny_generator):
    g = tiny_generator
    g.set_conv_clamp(0.05)
    try:
        img, _ = g([torch.randn(2, 64)])
        # the skip sum of 4 clamped ToRGB outputs (each upsampled with a gain-preserving filter) stays small
        assert img.abs().max() <= 0.05 * 4 * 1.5
    finally:
        g.set_conv_clamp(None)
    assert g([torch.randn(2, 64)])[0].abs().max() > 0.3


def test_the_batched_modulated_convolution_equals_the_grouped_one():
    """Encoder training runs each modulated convolution batched, everything else grouped: the same images and the
    same gradients, to rounding."""
    from ganinv.stylegan2.layers import batched_modconv
    from ganinv.toy.generator import load_generator

    torch.manual_seed(0)
    g = load_generator().eval().requires_grad_(False)
    codes = g.latent_avg.reshape(1, 1, -1) + 0.3 * torch.randn(4, g.n_latent, g.style_dim)
    with torch.no_grad():
        grouped = g([codes], input_is_latent=True, randomize_noise=False)[0]
    with torch.no_grad(), batched_modconv():
        batched = g([codes], input_is_latent=True, randomize_noise=False)[0]
    assert (batched - grouped).abs().max() < 1e-4
    # The gradients in float64, where rounding cannot hide a difference (in float32 the two forms' gradients differ
    # by up to 2e-4 of the largest on a CPU without AVX512: the rounding of different summation orders).
    g = g.double()
    c, d = codes.double().requires_grad_(True), codes.double().requires_grad_(True)
    with batched_modconv():
        g([c], input_is_latent=True, randomize_noise=False)[0].square().mean().backward()
    g([d], input_is_latent=True, randomize_noise=False)[0].square().mean().backward()
    assert torch.allclose(c.grad, d.grad, rtol=1e-9, atol=1e-9 * float(d.grad.abs().max()))
    style = torch.randn(2, g.style_dim, dtype=torch.float64)
    for conv in (g.convs[0].conv, g.convs[1].conv, g.to_rgbs[0].conv):  # upsampling, plain, not demodulated
        conv = conv.double()
        x = torch.randn(2, conv.in_ch, 8, 8, dtype=torch.float64)
        with torch.no_grad():
            assert torch.allclose(conv.batched(x, style), conv(x, style), atol=1e-10)
    assert g.convs[0].conv.upsample and not g.to_rgbs[0].conv.demodulate
