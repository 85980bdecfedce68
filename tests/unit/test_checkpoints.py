"""Every generator checkpoint format loads to the same network; bad files give one clear error, never code execution."""

from __future__ import annotations

import argparse
import json
import os
import pickle

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from ganinv.checkpoints import CheckpointError, load_generator, save_generator
from ganinv.checkpoints.nvidia import nvidia_to_rosinality
from ganinv.commands.convert import main as convert_main
from tests.fixtures import examples


@pytest.fixture(scope="module")
def rosinality_file(fixtures_dir):
    return fixtures_dir / "rosinality_tiny.pt"


@pytest.fixture(scope="module")
def nvidia_file(fixtures_dir):
    return fixtures_dir / "nvidia_tiny.pt"


def image(g, seed=0):
    z = torch.randn(2, g.style_dim, generator=torch.Generator().manual_seed(seed))
    return g([z], randomize_noise=False)[0]


@pytest.fixture(scope="module")
def nvidia_pickle(tmp_path_factory):
    return examples.nvidia_pickle(tmp_path_factory.mktemp("nvidia") / "network-snapshot-000000.pkl")


# ---- formats -------------------------------------------------------------------------------------------------

def test_nvidia_pickle_loads_without_running_its_source(nvidia_pickle, nvidia_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = load_generator(nvidia_pickle)
    assert not (tmp_path / "PWNED").exists()
    ref = load_generator(nvidia_file)
    assert_close(image(g), image(ref), rtol=0, atol=0)
    assert_close(g.latent_avg, torch.load(nvidia_file, weights_only=True)["G_ema"]["mapping.w_avg"])


def test_all_formats_give_the_same_network(rosinality_file, tmp_path):
    g = load_generator(rosinality_file)
    raw = torch.load(rosinality_file, weights_only=True)
    torch.save(raw["g_ema"], tmp_path / "plain.pt")  # bare state dict: latent_avg recomputed with a warning
    with pytest.warns(UserWarning, match="no latent_avg"):
        plain = load_generator(tmp_path / "plain.pt")
    psp = {"state_dict": {f"decoder.{k}": v for k, v in raw["g_ema"].items()},
           "latent_avg": raw["latent_avg"].repeat(8, 1), "opts": {"output_size": 32}}
    torch.save(psp, tmp_path / "psp.pt")
    snapshot = {"g": raw["g_ema"], "d": {}, "g_ema": raw["g_ema"], "args": argparse.Namespace(size=32)}
    torch.save(snapshot, tmp_path / "train_snapshot.pt")
    for other in (plain, load_generator(tmp_path / "psp.pt"), load_generator(tmp_path / "train_snapshot.pt")):
        assert_close(image(other), image(g), rtol=0, atol=0)
    assert_close(load_generator(tmp_path / "psp.pt").latent_avg, g.latent_avg)
    assert (plain.latent_avg - g.latent_avg).abs().max() < 0.5  # a fresh estimate of the same mean


def test_nvidia_state_dict_without_config(nvidia_file, tmp_path):
    raw = torch.load(nvidia_file, weights_only=True)
    torch.save(raw["G_ema"], tmp_path / "g.pt")
    assert_close(image(load_generator(tmp_path / "g.pt")), image(load_generator(nvidia_file)), rtol=0, atol=0)


def test_convert_round_trip(nvidia_pickle, tmp_path, capsys):
    dst = tmp_path / "converted.pt"
    assert convert_main([str(nvidia_pickle), str(dst)]) == 0
    assert "32px" in capsys.readouterr().out
    raw = torch.load(dst, weights_only=True)
    assert set(raw) == {"g_ema", "latent_avg", "ganinv_config"}
    assert_close(image(load_generator(dst)), image(load_generator(nvidia_pickle)), rtol=0, atol=0)
    assert not list(tmp_path.glob(".converted.pt.*"))  # atomic write leaves no temporary file


def test_nvidia_1024_manifest_converts_to_rosinality_1024(fixtures_dir, tmp_path):
    nv = json.loads((fixtures_dir / "manifest_nvidia_g_1024.json").read_text())
    ros = json.loads((fixtures_dir / "manifest_rosinality_g_1024.json").read_text())
    sd = {k: torch.zeros(shape) for k, shape in nv["G_state_dict"].items()}
    renamed, w_avg = nvidia_to_rosinality(sd)
    expected = ros["Generator(1024, 512, 8, channel_multiplier=2)"]["state_dict"]
    assert {k: list(v.shape) for k, v in renamed.items()} == expected and w_avg.shape == (512,)
    # and through the converter CLI with the pickle's constructor kwargs
    torch.save({"G_ema": sd, "config": nv["G_init_kwargs"]}, tmp_path / "nv1024.pt")
    del sd, renamed
    assert convert_main([str(tmp_path / "nv1024.pt"), str(tmp_path / "out.pt")]) == 0
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert {k: list(v.shape) for k, v in out["g_ema"].items()} == expected
    assert out["ganinv_config"]["conv_clamp"] == 256 and out["ganinv_config"]["size"] == 1024


def test_save_generator_round_trip(tiny_generator, tmp_path):
    save_generator(tiny_generator, tmp_path / "g.pt")
    g = load_generator(tmp_path / "g.pt")
    assert_close(image(g), image(tiny_generator), rtol=0, atol=0)
    assert_close(g.latent_avg, tiny_generator.latent_avg)
    assert not g.training and not any(p.requires_grad for p in g.parameters())


# ---- bad input -----------------------------------------------------------------------------------------------

def expect_error(path, match, **kwargs):
    with pytest.raises(CheckpointError, match=match) as info:
        load_generator(path, **kwargs)
    assert str(path) in str(info.value)
    return info.value


def test_missing_empty_and_folder(tmp_path):
    expect_error(tmp_path / "nope.pt", "no such file")
    (tmp_path / "empty.pt").write_bytes(b"")
    expect_error(tmp_path / "empty.pt", "empty")
    expect_error(tmp_path, "is a folder")


@pytest.mark.parametrize("suffix", [".pt", ".pkl"])
def test_truncated_and_corrupt(rosinality_file, nvidia_pickle, tmp_path, suffix):
    src = (rosinality_file if suffix == ".pt" else nvidia_pickle).read_bytes()
    (tmp_path / f"half{suffix}").write_bytes(src[: len(src) // 2])
    expect_error(tmp_path / f"half{suffix}", "truncated or (corrupt|damaged)")
    (tmp_path / f"noise{suffix}").write_bytes(np.random.default_rng(0).bytes(4096))
    expect_error(tmp_path / f"noise{suffix}", "corrupt|not a network pickle")


class _Exploit:
    def __reduce__(self):
        return os.system, ("touch PWNED",)


@pytest.mark.parametrize("suffix", [".pt", ".pkl"])
def test_code_in_pickle_is_never_run(tmp_path, monkeypatch, suffix):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pt":
        torch.save({"g_ema": _Exploit()}, path)
        err = expect_error(path, "weights-only load refused the global '(posix|os|nt).system'")
    else:
        path.write_bytes(pickle.dumps({"G_ema": _Exploit()}))
        err = expect_error(path, "refused to load global '(posix|os|nt).system'")
    assert "never runs code" in str(err) and "weights_only=False" not in str(err)
    assert not (tmp_path / "PWNED").exists()


def test_unexpected_class_in_pickle(tmp_path):
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"G_ema": argparse.Namespace(a=1)}))
    expect_error(path, "refused to load global 'argparse.Namespace'")


def test_architecture_mismatch_names_the_keys(rosinality_file):
    err = expect_error(rosinality_file, "does not match the generator architecture", channel_max=32)
    assert "shape mismatches" in str(err) and "conv.weight" in str(err) and "Omit the architecture" in str(err)
    err = expect_error(rosinality_file, "missing keys", size=64)
    assert "convs.6" in str(err)


def test_not_a_generator(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    expect_error(tmp_path / "other.pt", "holds no StyleGAN2 generator")
    torch.save({"state_dict": {"encoder.conv.weight": torch.zeros(1)}, "opts": {}}, tmp_path / "enc.pt")
    expect_error(tmp_path / "enc.pt", "encoder checkpoint without a decoder")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    expect_error(tmp_path / "list.pt", "not a checkpoint dict")
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4, 4)}}, tmp_path / "partial.pt")
    expect_error(tmp_path / "partial.pt", "not a StyleGAN2 generator state dict")


def test_convert_reports_errors_without_traceback(tmp_path, capsys):
    assert convert_main([str(tmp_path / "missing.pt"), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert "missing.pt: no such file" in err and "Traceback" not in err
    assert not (tmp_path / "out.pt").exists()
