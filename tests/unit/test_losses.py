"""Losses: hand-checked values, gradients and shapes, and clear errors for missing weight files.

Every network here is random (a narrow IR-SE, or the full ArcFace / MoCo / AlexNet layouts with random weights
saved to a temporary file): the checks are properties that hold for any weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganinv.checkpoints import CheckpointError
from ganinv.configs import CONF
from ganinv.encoders import LatentCodesDiscriminator, make_body, make_input_layer
from ganinv.losses import (
    LPIPS,
    ArcFaceBackbone,
    InDomainPerceptual,
    LazyR1,
    arcface_identity,
    code_loss,
    d_logistic_loss,
    delta_regularization,
    g_nonsaturating_loss,
    moco_identity,
    module_identity,
    r1_penalty,
    vgg16_conv4_3,
    w_norm,
)

ATOL = 1e-5  # float32 rounding of sums of a few hundred O(1) terms


# ---- latent losses ------------------------------------------------------------------------------------------------


def test_w_norm_is_zero_at_latent_avg_and_the_frobenius_norm_elsewhere():
    torch.manual_seed(0)
    avg = torch.randn(8, 16)
    codes = avg.expand(3, -1, -1)
    assert w_norm(codes, avg).item() == 0.0
    assert w_norm(codes, avg[0:1].expand(8, -1).contiguous()).item() > 0  # not trivially 0
    assert w_norm(avg[0].expand(3, 8, -1), avg[0]).item() == 0.0  # a [dim] latent_avg broadcasts to every layer
    # sample 0: four ones -> norm 2; sample 1: four twos -> norm 4; batch mean 3.
    codes = torch.stack([torch.ones(2, 2), torch.full((2, 2), 2.0)])
    assert_close(w_norm(codes), torch.tensor(3.0), rtol=0, atol=ATOL)
    assert_close(w_norm(codes + avg[:2, :2], avg[:2, :2]), torch.tensor(3.0), rtol=0, atol=ATOL)


def test_delta_regularization_of_identical_layers_is_zero_and_hand_values():
    torch.manual_seed(0)
    same = torch.randn(4, 1, 32).expand(-1, 8, -1)
    for stage in (None, 0, 4, 18):
        assert delta_regularization(same, stage).item() == 0.0
    codes = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]])  # offsets (3, 4) and (0, 1) from w0
    assert_close(delta_regularization(codes), torch.tensor(6.0), rtol=0, atol=ATOL)  # 5 + 1
    assert_close(delta_regularization(codes, stage=2), torch.tensor(5.0), rtol=0, atol=ATOL)  # offset 1 only
    assert delta_regularization(codes, stage=1).item() == 0.0  # stage 1: no offset trained yet (official e4e)
    assert_close(delta_regularization(codes, p=1), torch.tensor(8.0), rtol=0, atol=ATOL)  # 7 + 1
    # batch mean of the per-sample norms
    two = torch.cat([codes, 2 * codes])
    assert_close(delta_regularization(two), torch.tensor(9.0), rtol=0, atol=ATOL)  # (6 + 12) / 2


def test_code_loss_value_gradient_and_broadcast():
    torch.manual_seed(0)
    codes = torch.randn(2, 3, 4, requires_grad=True)
    w = torch.randn(2, 4)
    loss = code_loss(codes, w)  # a [B, dim] target applies to every layer
    assert loss.shape == ()
    expected = (codes.detach() - w[:, None]).pow(2).mean()
    assert_close(loss.detach(), expected, rtol=0, atol=ATOL)
    loss.backward()
    assert_close(codes.grad, 2 * (codes.detach() - w[:, None]) / codes.numel(), rtol=0, atol=ATOL)
    target = torch.randn(2, 3, 4)
    assert_close(code_loss(codes.detach(), target), (codes.detach() - target).pow(2).mean(), rtol=0, atol=ATOL)
    assert code_loss(target, target).item() == 0.0


# ---- adversarial losses -------------------------------------------------------------------------------------------


def test_normalized_style_space_by_hand(tiny_generator):
    """LSAP's S^N space: one style layer per W+ layer; the anchors are the mean unit style vectors of mapped z; the
    alignment term is the official sncd loss (−⟨unit style, anchor⟩ summed over layers), SND the cosine distance."""
    import torch.nn.functional as F

    from ganinv.losses import NormalizedStyleSpace, style_modulations

    g = tiny_generator
    space = NormalizedStyleSpace(g, 500, batch=200)
    mods = style_modulations(g)
    assert len(mods) == len(space.anchors()) == g.n_latent
    z = torch.randn(500, g.style_dim, generator=torch.Generator().manual_seed(0))
    w = g.get_latent(z)
    assert_close(space.anchors()[3], F.normalize(mods[3](w), dim=-1).mean(0))
    codes = torch.randn(4, g.n_latent, g.style_dim, requires_grad=True)
    units = [F.normalize(m(codes[:, i]), dim=-1) for i, m in enumerate(mods)]
    loss = space.alignment_loss(codes, range(3))
    assert_close(loss, -sum((units[i] @ space.anchors()[i]).mean() for i in range(3)))
    loss.backward()
    assert codes.grad[:, :3].abs().sum() > 0 and codes.grad[:, 3:].abs().sum() == 0  # only the active layers
    snd = space.distance(codes.detach())
    cos = torch.stack([F.cosine_similarity(u, a[None], dim=-1) for u, a in zip(units, space.anchors())], 1)
    assert_close(snd, (1 - cos).mean(1).detach())
    sampled = space.distance(w[:64, None].expand(-1, g.n_latent, -1))  # the generator's own codes: closest
    assert sampled.mean() < snd.mean() and 0 <= float(sampled.min())


def test_logistic_losses_at_zero_logits():
    zeros = torch.zeros(4, 1)
    assert_close(d_logistic_loss(zeros, zeros), torch.tensor(2 * math.log(2)), rtol=0, atol=ATOL)
    assert_close(g_nonsaturating_loss(zeros), torch.tensor(math.log(2)), rtol=0, atol=ATOL)
    big = torch.full((4, 1), 30.0)
    assert d_logistic_loss(big, -big).item() < 1e-12  # a perfect discriminator costs ~0


def test_r1_of_a_linear_discriminator_is_the_squared_weight_norm():
    torch.manual_seed(0)
    a = torch.randn(3, 4, 4)  # D(x) = <a, x> on image-shaped input: grad_x D = a, R1 = |a|^2 for every sample
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    pred = (x * a).flatten(1).sum(1, keepdim=True)
    assert_close(r1_penalty(pred, x), a.pow(2).sum(), rtol=0, atol=ATOL)
    # D(x) = |x|^2: grad = 2x, R1 = mean_b 4 |x_b|^2
    pred = x.pow(2).flatten(1).sum(1)
    assert_close(r1_penalty(pred, x), 4 * x.detach().pow(2).flatten(1).sum(1).mean(), rtol=0, atol=1e-4)


def test_lazy_r1_value_gradients_and_schedule():
    torch.manual_seed(0)
    d = nn.Linear(6, 1)
    real = torch.randn(4, 6)
    r1 = LazyR1(gamma=10.0, every=16)
    loss = r1(d, real)
    w = d.weight.detach()
    assert loss.shape == ()
    assert_close(loss.detach(), 10.0 / 2 * w.pow(2).sum() * 16, rtol=0, atol=1e-4)  # value ~ 1e2
    loss.backward()
    assert_close(d.weight.grad, 10.0 * 16 * w, rtol=0, atol=1e-4)  # d/dW of gamma/2 * every * |W|^2
    assert d.bias.grad is not None and d.bias.grad.abs().max().item() == 0.0  # kept in the graph for DDP, zero
    assert not real.requires_grad and real.grad is None  # the caller's tensor is untouched
    assert [r1.due(s) for s in (0, 1, 15, 16, 32)] == [True, False, False, True, True]
    assert not LazyR1(every=0).due(0)


def test_lazy_r1_on_the_latent_discriminator_reaches_every_parameter():
    torch.manual_seed(0)
    d = LatentCodesDiscriminator(8, 4)
    loss = LazyR1(gamma=10.0, every=16)(d, torch.randn(5, 8))
    assert loss.shape == () and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    assert d.mlp[0].weight.grad.abs().sum() > 0


# ---- identity similarity ------------------------------------------------------------------------------------------


def _small_ir_se():
    return nn.Sequential(make_input_layer(3, 8), make_body(50, "ir_se", (8, 8, 12, 16)), nn.AdaptiveAvgPool2d(1))


def test_identity_similarity_of_an_image_with_itself_is_one():
    torch.manual_seed(0)
    net = _small_ir_se()
    loss_fn = module_identity(net, input_size=32)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert_close(loss_fn.similarity(x, x), torch.ones(2), rtol=0, atol=ATOL)
        assert abs(loss_fn(x, x).item()) < ATOL
        sim = loss_fn.similarity(x, y)
        assert (sim < 1 - 1e-3).all()
        assert_close(loss_fn(x, y), (1 - sim).mean(), rtol=0, atol=ATOL)
    assert not loss_fn.train().training and not net.training  # frozen and kept in eval mode

    y_hat = y.clone().requires_grad_(True)
    target = x.clone().requires_grad_(True)
    loss_fn(y_hat, target).backward()
    assert y_hat.grad is not None and y_hat.grad.abs().sum() > 0
    assert target.grad is None  # the target embedding is detached
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())


def test_arcface_wrapper_loads_released_keys_and_ignores_pixels_outside_the_face_crop(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model_ir_se50.pth"
    torch.save(ArcFaceBackbone().state_dict(), path)  # random weights, released key names
    id_loss = arcface_identity(path)
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    outside, inside = x.clone(), x.clone()
    outside[..., :35, :] = outside[..., 223:, :] = 1.0  # rows outside pSp's crop 35:223
    inside[..., 100:140, 100:140] = -1.0
    with torch.no_grad():
        e = id_loss.embed(torch.cat([x, outside, inside]))
    assert e.shape == (3, 512)
    assert_close(e.norm(dim=1), torch.ones(3), rtol=0, atol=ATOL)
    assert_close(e[0] @ e[0], torch.tensor(1.0), rtol=0, atol=ATOL)  # self-similarity
    assert_close(e[0] @ e[1], torch.tensor(1.0), rtol=0, atol=ATOL)  # only the crop is seen
    assert (e[0] @ e[2]).item() < 1 - 1e-4

    torch.save({"input_layer.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="ArcFace IR-SE50.*missing"):
        arcface_identity(tmp_path / "other.pth")


def test_identity_reads_other_ir_backbones_off_the_file(tmp_path):
    """CurricularFace's layout (IR without SE, final BatchNorm without affine), here at depth 50 to stay small."""
    torch.manual_seed(0)
    net = ArcFaceBackbone(50, "ir", affine=False).eval()
    torch.save(net.state_dict(), tmp_path / "curricular_style.pth")
    loaded = arcface_identity(tmp_path / "curricular_style.pth").embedder
    assert not any(k.endswith("fc1.weight") for k in loaded.state_dict()) and loaded.output_layer[4].weight is None
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert_close(loaded(x), net(x), rtol=0, atol=ATOL)


def test_moco_wrapper_keeps_encoder_q_without_its_head(tmp_path):
    from torchvision.models import resnet50

    torch.manual_seed(0)
    q = {k: v for k, v in resnet50(weights=None).state_dict().items() if not k.startswith("fc.")}
    head = {"fc.0.weight": torch.randn(2048, 2048), "fc.0.bias": torch.zeros(2048),
            "fc.2.weight": torch.randn(128, 2048), "fc.2.bias": torch.zeros(128)}  # MoCo v2's MLP head
    sd = {f"module.encoder_q.{k}": v for k, v in {**q, **head}.items()}
    sd["module.encoder_k.conv1.weight"] = torch.zeros(64, 3, 7, 7)
    torch.save({"state_dict": sd, "epoch": 800}, tmp_path / "moco.pt")
    sim = moco_identity(tmp_path / "moco.pt")
    assert torch.equal(sim.embedder.conv1.weight, q["conv1.weight"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        e = sim.embed(x)  # nearest-resized to 224, pooled 2048-d feature
    assert e.shape == (1, 2048)
    assert_close(e @ e.T, torch.ones(1, 1), rtol=0, atol=ATOL)


def test_lpips_of_identical_images_is_zero(tmp_path):
    import lpips as lpips_package
    from torchvision.models import alexnet

    torch.manual_seed(0)
    trunk = {f"features.{k}": v for k, v in alexnet(weights=None).features.state_dict().items()}
    torch.save(trunk, tmp_path / "alexnet.pth")  # torchvision key names, random values
    lpips = LPIPS("alex", backbone_path=tmp_path / "alexnet.pth")
    sd = lpips.model.state_dict()
    assert torch.equal(sd["net.slice1.0.weight"], trunk["features.0.weight"])
    assert torch.equal(sd["net.slice5.10.bias"], trunk["features.10.bias"])
    lins = torch.load(Path(lpips_package.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu",
                      weights_only=True)
    assert all(torch.equal(sd[k], v) and torch.equal(sd[k.replace("lin", "lins.", 1)], v) for k, v in lins.items())
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert lpips(x, x).item() == 0.0
        assert lpips(x, y).item() > 0
    assert not any(p.requires_grad for p in lpips.parameters())


# ---- missing weight files: the error names the file and where it goes ---------------------------------------------


@pytest.fixture()
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


@pytest.mark.parametrize("net,file", [("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth")])
def test_lpips_backbone_offline_names_the_file_and_the_cache_folder(empty_torch_home, net, file):
    with pytest.raises(CheckpointError) as info:
        LPIPS(net)
    message = str(info.value)
    assert str(empty_torch_home / file) in message and "TORCH_HOME" in message
    assert f"https://download.pytorch.org/models/{file}" in message


def test_lpips_backbone_path_missing_names_the_file(empty_torch_home, tmp_path):
    missing = tmp_path / "nets" / "alexnet.pth"
    with pytest.raises(CheckpointError) as info:
        LPIPS("alex", backbone_path=missing)
    message = str(info.value)
    assert str(missing) in message and "alexnet-owt-7be5be79.pth" in message and str(empty_torch_home) in message


def test_vgg16_missing_names_the_file_and_the_cache_folder(empty_torch_home, tmp_path):
    for build in (vgg16_conv4_3, InDomainPerceptual):
        with pytest.raises(CheckpointError) as info:
            build()
        assert str(empty_torch_home / "vgg16-397923af.pth") in str(info.value)
    missing = tmp_path / "vgg.pth"
    with pytest.raises(CheckpointError) as info:
        InDomainPerceptual(weights_path=missing)
    assert str(missing) in str(info.value) and "vgg16-397923af.pth" in str(info.value)


@pytest.mark.parametrize("loader,file", [(arcface_identity, "model_ir_se50.pth"),
                                         (moco_identity, "moco_v2_800ep_pretrain.pt")])
def test_identity_weights_missing_names_the_file_and_where_to_put_it(tmp_path, loader, file):
    path = tmp_path / "weights" / file
    with pytest.raises(CheckpointError) as info:
        loader(path)
    message = str(info.value)
    assert f"put it at {path}" in message and "GANINV_WEIGHTS" in message and "README" in message
    assert message.count(file) >= 2  # the path and the release it comes from


def test_toy_loss_config_builds_the_toy_perceptual_and_identity_terms():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from ganinv.toy import render

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(str(conf), version_base=None):
        cfg = compose("train", overrides=["loss=toy"])
    perceptual, identity = instantiate(cfg.loss.perceptual), instantiate(cfg.loss.identity)
    x, other = render(4, 64, seed=1).images, render(4, 64, seed=2).images
    y_hat = x.clone().requires_grad_(True)
    with torch.no_grad():
        assert perceptual(x, x).item() < 1e-6 and perceptual(x, other).item() > 0.05
        assert identity(x, x).item() < 1e-5 and identity(x, other).item() > 0.3
    (perceptual(y_hat, other) + identity(y_hat, other)).backward()
    assert y_hat.grad.abs().sum() > 0  # gradients reach the reconstruction through both frozen nets
    assert not any(p.requires_grad for p in [*perceptual.parameters(), *identity.parameters()])


@pytest.mark.parametrize("method", ["psp", "e4e", "restyle_psp"])
def test_the_configured_ranger_reproduces_the_official_one(fixtures_dir, method):
    """20 steps of the official `training/ranger.py` (tests/fixtures/ranger_ref.pt: RAdam, gradient centralisation,
    Lookahead every 6 steps) from the same parameters and gradients, to 1e-6."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    ref = torch.load(fixtures_dir / "ranger_ref.pt", weights_only=True)
    opt_cfg = OmegaConf.load(Path(CONF) / "method" / f"{method}.yaml").optimizer
    params = [p.clone().requires_grad_(True) for p in ref["params"]]
    opt = instantiate(opt_cfg, lr=ref["lr"])(params)
    for step in range(len(ref["grads"][0])):
        for p, g in zip(params, ref["grads"]):
            p.grad = g[step].clone()
        opt.step()
    worst = max(float((p.detach() - a).abs().max()) for p, a in zip(params, ref["after"]))
    assert worst <= 1e-6, worst
    moved = max(float((p - a).abs().max()) for p, a in zip(ref["params"], ref["after"]))
    assert moved > 1e-4  # the reference did move the parameters
