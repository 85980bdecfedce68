"""`export_official` / `ganinv-export`: files the official pSp / e4e / ReStyle code runs, meaning what ganinv means.

The official scripts themselves need CUDA ops; their option lists (tests/fixtures/official_opts) are checked here.
"""

from __future__ import annotations

import json

import pytest
import torch

from ganinv.checkpoints import load_official
from ganinv.methods import E4EModule, PSPModule, ReStyleModule, export_official, load_method
from ganinv.methods.export import DATASET_TYPES

NARROW = {"widths": [8, 8, 12, 16]}
E4E_LOSS = {"weights": {"l2": 1.0, "perceptual": 0, "id": 0, "w_discriminator": 0.1, "delta_norm": 2e-4},
            "r1": {"gamma": 5.0, "every": 8}}
E4E_DISCRIMINATOR = {"pool_size": 0, "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 3e-5}}
# What a run sets, so the export says what it used; every other option keeps the official default.
SET_BY_RUN = {"encoder_type", "dataset_type", "start_from_latent_avg", "max_steps", "output_size", "stylegan_size",
              "input_nc", "label_nc", "learn_in_w", "n_iters_per_batch", "learning_rate", "optim_name", "l2_lambda",
              "lpips_lambda", "id_lambda", "w_norm_lambda", "delta_norm_lambda", "w_discriminator_lambda",
              "progressive_start", "progressive_step_every", "delta_norm", "r1", "d_reg_every", "use_w_pool",
              "w_pool_size", "w_discriminator_lr"}


def official_module(g, name: str):
    """A module of the official kind `name`, its heads non-zero and, for the e4e family, at stage 3 of 7."""
    torch.manual_seed(0)
    e4e = {"loss": E4E_LOSS, "discriminator": E4E_DISCRIMINATOR, "progressive_start": 0, "progressive_step_every": 1}
    m = {"psp_train": lambda: PSPModule(g, encoder=NARROW, input_size=64),
         "e4e_train": lambda: E4EModule(g, encoder=NARROW, input_size=64, **e4e),
         "restyle_psp_train": lambda: ReStyleModule(g, encoder=NARROW, input_size=64, n_iters_per_batch=2),
         "restyle_e4e_train": lambda: ReStyleModule(g, encoder=NARROW, input_size=64, variant="e4e",
                                                    n_iters_per_batch=2, **e4e)}[name]()
    for p in m.encoder.parameters():  # every head non-zero, so that an active offset moves the code
        p.data.add_(torch.randn_like(p) * 0.05)
    m.iteration.fill_(2)  # e4e family: stage 3, offsets 4..7 still off
    return m


@pytest.mark.parametrize("official", ["psp_train", "e4e_train", "restyle_psp_train", "restyle_e4e_train"])
def test_export_writes_every_option_the_official_scripts_read(tiny_generator, tmp_path, fixtures_dir, official):
    module = official_module(tiny_generator, official)
    opts = torch.load(export_official(module, tmp_path / "x.pt"), weights_only=True)["opts"]
    reference = json.loads((fixtures_dir / "official_opts" / f"{official}.json").read_text())
    assert not set(reference) - set(opts), set(reference) - set(opts)
    unset = {k: (opts[k], v) for k, v in reference.items() if k not in SET_BY_RUN and k != "stylegan_weights"}
    assert all(ours == theirs for ours, theirs in unset.values()), unset
    assert opts["device"] == "cuda:0" and opts["dataset_type"] == "ffhq_encode"
    assert opts["encoder_type"] == type(module.encoder).__name__ and opts["max_steps"] == module.max_iterations
    if "e4e" in official:
        assert (opts["r1"], opts["d_reg_every"], opts["use_w_pool"], opts["w_discriminator_lr"]) == (5.0, 8, False,
                                                                                                       3e-5)
        assert opts["progressive_start"] == 0 and opts["w_discriminator_lambda"] == 0.1


def test_export_dataset_type_follows_the_task(tiny_generator, tmp_path):
    module = official_module(tiny_generator, "psp_train")
    for task, dataset_type in DATASET_TYPES.items():
        opts = torch.load(export_official(module, tmp_path / "x.pt", task), weights_only=True)["opts"]
        assert opts["dataset_type"] == dataset_type
    with pytest.raises(ValueError, match="task 'colour' is not one of"):
        export_official(module, tmp_path / "y.pt", "colour")


@pytest.mark.parametrize("name", ["e4e_train", "restyle_e4e_train", "restyle_psp_train"])
def test_export_means_the_same_with_every_offset_active(tiny_generator, tmp_path, name):
    """The official inference runs every offset; an export made at stage 3 has the inactive heads zeroed, so the
    file read with every offset active (as the official code and load_method read it) gives the run's codes."""
    module = official_module(tiny_generator, name).eval()
    out = export_official(module, tmp_path / "x.pt")
    encoder = load_official(out).encoder
    stage, progressive = module.stage, getattr(module.encoder, "progressive_stage", None) is not None
    if progressive:  # the run's stage leaves offsets off; the file read back has every one active (the official
        assert stage < module.n_latent - 1 <= encoder.progressive_stage  # reader's inference stage is 18)
    else:
        assert getattr(encoder, "progressive_stage", None) is None
    x = torch.rand(2, module.input_nc + (3 if isinstance(module, ReStyleModule) else 0), 64, 64) * 2 - 1
    with torch.no_grad():
        if progressive:
            module.encoder.progressive_stage = stage
        torch.testing.assert_close(encoder(x), module.encoder(x), rtol=0, atol=1e-6)
        again = load_method(out)
        if isinstance(module, ReStyleModule):
            assert again.variant == module.variant
        torch.testing.assert_close(again.invert(x[:, :3]).codes, module.invert(x[:, :3]).codes, rtol=0, atol=1e-5)
        if progressive:  # the zeroed heads did matter
            module.encoder.progressive_stage = module.n_latent - 1
            assert (module.encoder(x) - encoder(x)).abs().max() > 1e-3


def test_export_of_psp_in_w_keeps_one_average_code(tiny_generator, tmp_path):
    """pSp's `learn_in_w` adds `latent_avg.repeat(B, 1)` to [B, dim] codes: the file holds [1, dim]."""
    module = PSPModule(tiny_generator, encoder=NARROW, input_size=64, space="w").eval()
    raw = torch.load(export_official(module, tmp_path / "w.pt"), weights_only=True)
    assert raw["latent_avg"].shape == (1, tiny_generator.style_dim) and raw["opts"]["learn_in_w"] is True
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    again = load_method(tmp_path / "w.pt")
    torch.testing.assert_close(again.invert(x).codes, module.invert(x).codes, rtol=0, atol=1e-5)
