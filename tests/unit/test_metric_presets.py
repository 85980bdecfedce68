"""The published tables' metric presets (`metrics=ganinverter | psp | sfe`): the official scripts' numbers on the
fixture images, each preset by hand, pytorch-fid's FID on files, metric cards in records and on the leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

from ganinv.metrics.published import ganinverter, psp, sfe
from ganinv.metrics.records import write_record
from tests.commands import composed, in_process

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PRESETS = {"ganinverter": ganinverter, "psp": psp, "sfe": sfe}


@pytest.fixture(scope="module")
def alexnet(tmp_path_factory) -> Path:
    """AlexNet's trunk in torchvision's key names with the fixtures' seeded weights (He-scaled normal, seed 7):
    tests/fixtures/metric_presets_ref.json was made with the same trunk."""
    g = torch.Generator().manual_seed(7)
    trunk = {}
    for k, v in torchvision.models.alexnet(weights=None).features.state_dict().items():
        trunk[f"features.{k}"] = torch.randn(v.shape, generator=g) * ((2 / v[0].numel()) ** 0.5 if
                                                                      k.endswith("weight") else 0.01)
    path = tmp_path_factory.mktemp("alexnet") / "alexnet.pth"
    torch.save(trunk, path)
    return path


def test_presets_give_the_official_scripts_numbers_on_the_fixture_images(alexnet):
    """tests/fixtures/metric_presets_ref.json: GAN Inverter's scripts/test.py evaluation, pSp's
    calc_losses_on_images.py and StyleFeatureEditor's L2 / LPIPS / MS-SSIM metrics run on CPU on these images
    (README.md there). Agreement to 1e-5 relative (measured: 1e-7); the presets differ from one another by more
    than 1e-4 on the same images, so each must follow its own script."""
    ref = json.loads((FIXTURES / "metric_presets_ref.json").read_text())
    images = torch.load(FIXTURES / "metric_presets_images.pt", weights_only=True)
    recon, targets = images["recon"].float(), images["targets"].float() / 127.5 - 1
    names = {"mse": {"ganinverter": "mse", "psp": "l2", "sfe": "l2"}, "lpips": "lpips", "psnr": "psnr",
             "ms_ssim": "msssim"}
    got = {}
    for preset, build in PRESETS.items():
        metrics = build(None, alexnet)
        metrics.update(recon, targets)
        got[preset] = metrics.compute()
        for ours, theirs in names.items():
            theirs = theirs[preset] if isinstance(theirs, dict) else theirs
            if theirs in ref[preset]:
                assert got[preset][ours] == pytest.approx(ref[preset][theirs], rel=1e-5), (preset, ours)
        assert set(got[preset]) == {k for k in names if (names[k][preset] if isinstance(names[k], dict) else
                                                         names[k]) in ref[preset]}, got[preset]
    assert abs(got["ganinverter"]["mse"] / got["psp"]["mse"] - 1) > 1e-4  # torch vs PIL resize of the results


def saved_uint8(x: torch.Tensor) -> np.ndarray:
    """A [-1, 1] image as the scripts' tensor2im saves it: [H, W, 3] uint8, truncated."""
    return (((x.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1) * 255).astype("uint8")


def test_each_preset_is_its_script_by_hand(alexnet):
    """Three 96-px pairs by hand: reconstructions saved as 8-bit files (truncated), resized to 256 by PIL
    (pSp, SFE) or by torch (GAN Inverter's reconstructions), targets by PIL; MSE on [-1, 1]; GAN Inverter's PSNR
    10 log10(2/MSE); LPIPS AlexNet from the lpips package; SFE's MS-SSIM by piq after PIL's bicubic (at 256 px
    here; at its 1024 in the official fixture's test)."""
    import lpips
    import piq

    from ganinv.losses import LPIPS

    g = torch.Generator().manual_seed(1)
    targets = (torch.rand(3, 3, 96, 96, generator=g) * 255).round() / 127.5 - 1
    recon = (targets + 0.2 * torch.randn(3, 3, 96, 96, generator=g)).clamp(-1.2, 1.2)
    net = LPIPS("alex", alexnet).model
    assert isinstance(net, lpips.LPIPS)

    def pil(a: np.ndarray, size: int, how=Image.BILINEAR) -> torch.Tensor:
        return torch.from_numpy(np.asarray(Image.fromarray(a).resize((size, size), how))).permute(2, 0, 1) / 127.5 - 1

    def target_u8(y):
        return ((y.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype("uint8")

    t256 = torch.stack([pil(target_u8(y), 256) for y in targets])
    saved = torch.stack([torch.from_numpy(saved_uint8(r)).permute(2, 0, 1) / 127.5 - 1 for r in recon])
    by_torch = F.interpolate(saved, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
    by_pil = torch.stack([pil(saved_uint8(r), 256) for r in recon])
    mse_torch, mse_pil = (by_torch - t256).pow(2).mean((1, 2, 3)), (by_pil - t256).pow(2).mean((1, 2, 3))
    with torch.no_grad():
        lp_torch, lp_pil = net(by_torch, t256).flatten(), net(by_pil, t256).flatten()
    big = [torch.stack([pil(a, 256, Image.BICUBIC) for a in arrays]) for arrays in
           ([saved_uint8(r) for r in recon], [target_u8(y) for y in targets])]
    ms = piq.multi_scale_ssim((big[0] + 1) / 2, (big[1] + 1) / 2, data_range=1.0, reduction="none")
    expected = {"ganinverter": {"mse": mse_torch.mean(), "psnr": (10 * torch.log10(2 / mse_torch)).mean(),
                                "lpips": lp_torch.mean()},
                "psp": {"mse": mse_pil.mean(), "lpips": lp_pil.mean()},
                "sfe": {"mse": mse_pil.mean(), "lpips": lp_pil.mean(), "ms_ssim": ms.mean()}}
    for preset, build in PRESETS.items():
        metrics = build(None, alexnet, **({"ms_ssim_size": 256} if preset == "sfe" else {}))  # 1024: the fixture's
        metrics.update(recon[:2], targets[:2])
        metrics.update(recon[2:], targets[2:])  # per image, averaged over batches
        got = metrics.compute()
        assert set(got) == set(expected[preset]), (preset, got)
        for k, v in expected[preset].items():
            assert got[k] == pytest.approx(float(v), rel=1e-5, abs=1e-7), (preset, k)
        card = metrics.card()
        assert card["preset"] == preset and "AlexNet" in card["lpips"] and "truncated" in card["mse"]
    assert "10 log10(2/MSE)" in ganinverter(None, alexnet).card()["psnr"]


@pytest.mark.slow  # two matrix square roots of 2048 x 2048: a minute on two cores
def test_pytorch_fid_is_pytorch_fid_on_the_saved_files(tmp_path, monkeypatch):
    """`fid=pytorch_fid` (GAN Inverter's and SFE's FID) equals pytorch-fid's own `calculate_fid_given_paths` on
    the targets and the reconstructions saved as files (truncated), with the same Inception weights."""
    from pytorch_fid import fid_score, inception

    from ganinv.metrics import fid_kid
    from ganinv.metrics.pytorch_fid import FILE, PytorchFID

    torch.manual_seed(0)
    model = inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)  # random weights in the
    a, c, e1, e2 = (inception.FIDInceptionA, inception.FIDInceptionC, inception.FIDInceptionE_1,  # FID net's layout
                    inception.FIDInceptionE_2)
    for name, (block, *args) in {"Mixed_5b": (a, 192, 32), "Mixed_5c": (a, 256, 64), "Mixed_5d": (a, 288, 64),
                                 "Mixed_6b": (c, 768, 128), "Mixed_6c": (c, 768, 160), "Mixed_6d": (c, 768, 160),
                                 "Mixed_6e": (c, 768, 192), "Mixed_7b": (e1, 1280), "Mixed_7c": (e2, 2048)}.items():
        setattr(model, name, block(*args))
    state = model.state_dict()
    weights = tmp_path / FILE
    torch.save(state, weights)
    g = torch.Generator().manual_seed(2)
    real = (torch.rand(5, 3, 64, 64, generator=g) * 255).round() / 127.5 - 1
    fake = (real + 0.3 * torch.randn(5, 3, 64, 64, generator=g)).clamp(-1, 1)
    ours = fid_kid(real, {"rec": fake}, PytorchFID(weights))
    for folder, images, as_file in (("real", real, lambda y: ((y.permute(1, 2, 0).numpy() + 1) * 127.5).round()
                                     .astype("uint8")), ("fake", fake, saved_uint8)):
        (tmp_path / folder).mkdir()
        for i, y in enumerate(images):
            Image.fromarray(as_file(y)).save(tmp_path / folder / f"{i}.png")
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: state)
    theirs = fid_score.calculate_fid_given_paths([str(tmp_path / "real"), str(tmp_path / "fake")], 5, "cpu", 2048, 0)
    assert set(ours) == {"fid_rec"} and ours["fid_rec"] == pytest.approx(theirs, rel=1e-5)


def test_records_carry_their_metric_card_and_the_board_ranks_one_card(tmp_path, monkeypatch, capsys):
    """`ganinv-eval` writes the metric card (preset, each metric's reading, targets' size, FID); the leaderboard
    ranks the records of the most common card and names what differs in the others."""
    from ganinv.workflows.evaluation import evaluate

    out = tmp_path / "records"
    evaluate(composed("eval", "refine=optim_w", "refine.steps=2", f"output={out / 'w.json'}", "n_images=4",
                      "editability.lec_images=0", "editability.p_norm_samples=200", "editability.snd_samples=200",
                      "fid=none"))
    record = json.loads((out / "w.json").read_text())
    card = record["metric_card"]
    assert card["preset"] == "toy" and card["targets"].startswith("64 x 64") and card["fid"] == "not computed"
    assert "ssim" in card and "perceptual" in card
    for name, lpips in (("b", "VGG"), ("c", "AlexNet")):  # two records of another card, one more of this one
        other = {**record, "name": name, "weights": name,
                 "metric_card": {**card, "preset": "ganinverter", "perceptual": f"LPIPS {lpips}"}}
        write_record(other, out / f"{name}.json")
    write_record({**record, "name": "a", "weights": "a"}, out / "a.json")
    run = in_process("leaderboard", f"input={out}", "editability=p_norm", monkeypatch=monkeypatch, capsys=capsys)
    assert run.returncode == 0, run.stderr
    skipped = [line for line in run.stdout.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2 and all("another metric card (metrics=ganinverter)" in s and "perceptual" in s
                                     for s in skipped), run.stdout
    assert "VGG" in run.stdout and "AlexNet" in run.stdout


def test_a_preset_evaluates_through_ganinv_eval(alexnet, tmp_path):
    """`ganinv-eval metrics=psp`: the script's metrics only (no PSNR, no SSIM), the targets at the generator's
    size, no FID (pSp's scripts have none), the preset on the card."""
    from ganinv.workflows.evaluation import evaluate

    out = tmp_path / "psp.json"
    evaluate(composed("eval", "refine=optim_w", "refine.steps=2", f"output={out}", "n_images=2", "metrics=psp",
                      f"metrics.lpips_path={alexnet}", "metrics.identity=null", "editability.lec_images=0",
                      "editability.p_norm_samples=200", "editability.snd_samples=200"))
    record = json.loads(out.read_text())
    assert {"mse", "lpips"} <= set(record["metrics"]) and not {"psnr", "ssim", "fid_rec"} & set(record["metrics"])
    card = record["metric_card"]
    assert card["preset"] == "psp" and card["fid"] == "not computed" and card["targets"].startswith("64 x 64")
    assert "PIL bilinear" in card["mse"] and "truncated" in card["lpips"]
