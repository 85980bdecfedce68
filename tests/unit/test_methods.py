"""The inversion methods: each trains through ganinv-train on the toy domain, resumes exactly, and loads, exports
and fails as documented (what each learns: tests/slow/test_learning_*.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from torchvision.utils import save_image

from ganinv.checkpoints import CheckpointError, load_official
from ganinv.configs import CONF
from ganinv.methods import (
    ConfigError,
    E4EModule,
    LSAPModule,
    PSPModule,
    ReStyleModule,
    TrainingDiverged,
    export_official,
    load_method,
)
from ganinv.methods.e4e import progressive_stage
from ganinv.workflows.training import build, train
from tests.commands import composed
from tests.fixtures import examples
from tests.runs import ON_BASE, RECIPES, SMALL, config


def on_e4e(name: str, e4e_run: Path | None) -> list[str]:
    """`method.base=` for the methods that start from a trained e4e: the checkpoint of `e4e_run`."""
    return [f"method.base={last(e4e_run)}"] if name in ON_BASE else []


def last(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Each toy experiment trained for 2 iterations with narrow networks (`tests.runs.SMALL`), HyperStyle and HFGI
    on the e4e run: name -> run folder. What these tests check needs a run's files, not its quality; what every
    method learns is checked by tests/slow/test_learning_*.py."""
    out: dict[str, Path] = {}
    for name in RECIPES:  # sorted: toy_e4e before the methods that start from it
        out[name] = tmp_path_factory.mktemp(name)
        train(config(name, out[name], 2, "trainer.val_check_interval=1000", "data.batch_size=4", "data.toy.n_val=8",
                     *SMALL[name], *on_e4e(name, out.get("toy_e4e"))))
    return out


def test_e4e_stage_follows_the_schedule():
    assert [progressive_stage(i, 50, 25, 10) for i in (0, 49, 50, 74, 75, 300)] == [0, 0, 1, 1, 2, 9]
    assert progressive_stage(0, None, 25, 10) == 9  # not progressive: every offset


def logged_losses(log_dir: Path) -> list[float]:
    import csv

    with open(log_dir / "metrics.csv") as f:
        return [float(row["train/loss"]) for row in csv.DictReader(f) if row.get("train/loss")]


def params(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("name", ["toy_e4e", *(pytest.param(n, marks=pytest.mark.slow) for n in ("toy_restyle_e4e",
                                                                                  "toy_lsap"))])
def test_resume_equals_an_uninterrupted_run(tmp_path, name):
    """Half, resume, the rest: the same per-iteration losses and final weights (encoder, discriminator, pools) as
    one run, with the e4e stage crossing the resume point (offsets from iteration 2, one more every 2)."""
    extra = ["method.progressive_start=2", "method.progressive_step_every=2", "callbacks.checkpoint_every=3",
             "data.batch_size=4", "method.encoder.widths=[8,8,12,16]", "logger=csv", "trainer.log_every_n_steps=1"]
    if "restyle" in name:
        extra.append("method.n_iters_per_batch=2")
    whole_run = train(config(name, tmp_path / "whole", 6, *extra)).run
    train(config(name, tmp_path / "half", 3, *extra))
    resumed_run = train(config(name, tmp_path / "half", 6, *extra, "resume=last")).run
    resumed = params(resumed_run / "checkpoints" / "last.ckpt")
    whole = params(whole_run / "checkpoints" / "last.ckpt")
    assert int(resumed["iteration"]) == 6
    worst = max((whole[k].float() - resumed[k].float()).abs().max().item() for k in whole)
    assert worst <= 1e-6, worst
    losses = [logged_losses(whole_run / "logs" / "version_0"),
              logged_losses(resumed_run / "logs" / "version_1")]
    assert len(losses[0]) == 6 and losses[1] == pytest.approx(losses[0][3:], abs=1e-6)
    assert load_method(tmp_path / "half" / "checkpoints" / "last.ckpt").stage == 3


@pytest.mark.parametrize("name", ["toy_hfgi", *(pytest.param(n, marks=pytest.mark.slow) for n in (
    "toy_hyperstyle", "toy_feature_style", "toy_styleres", "toy_sfe"))])
def test_methods_without_stages_resume_exactly(runs, tmp_path, name):
    """HFGI (its random warps), HyperStyle (its refinement steps, ReStyle's loop), Feature-Style (its features'
    blend-in), StyleRes (its drawn edits) and SFE (its phases: the editor from the resume point): half, resume, the
    rest = one run."""
    small = [o for o in SMALL[name] if not o.startswith("method.editor_from=")]
    extra = ["callbacks.checkpoint_every=2", "data.batch_size=4", *small, *on_e4e(name, runs["toy_e4e"]),
             *(["method.editor_from=2"] if name == "toy_sfe" else [])]
    whole = params(train(config(name, tmp_path / "whole", 4, *extra)).run / "checkpoints" / "last.ckpt")
    train(config(name, tmp_path / "half", 2, *extra))
    resumed = params(train(config(name, tmp_path / "half", 4, *extra, "resume=last")).run / "checkpoints" /
                     "last.ckpt")
    assert int(resumed["iteration"]) == 4 and whole.keys() == resumed.keys()
    assert max((whole[k].float() - resumed[k].float()).abs().max().item() for k in whole) <= 1e-6


def test_nan_loss_stops_with_the_term_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = PSPModule.image_losses

    def poisoned(self, y_hat, y):
        terms = original(self, y_hat, y)
        if int(self.iteration) == 3:
            terms["perceptual"] = terms["perceptual"] * float("nan")
        return terms

    monkeypatch.setattr(PSPModule, "image_losses", poisoned)
    cfg = config("toy_psp", tmp_path, 10, "callbacks.checkpoint_every=2", "data.batch_size=4")
    with pytest.raises(TrainingDiverged, match="'perceptual' is nan at iteration 3"):
        train(cfg)
    assert int(params(tmp_path / "checkpoints" / "last.ckpt")["iteration"]) == 2


def test_resume_refuses_another_method_or_generator(tmp_path):
    cfg = config("toy_psp", tmp_path, 2, "data.batch_size=4")
    train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    other = config("toy_e4e", tmp_path / "e4e", 2, f"resume={last}", "data.batch_size=4")
    with pytest.raises(CheckpointError, match="was written by PSPModule, not E4EModule"):
        train(other)
    model, _ = build(cfg)
    model.hparams["generator_hash"] = "0" * 64
    from ganinv.workflows.trainer import resume_path

    with pytest.raises(CheckpointError, match="trained against another generator"):
        resume_path(tmp_path / "checkpoints", "auto", model)


# ---- inference API on the official files, export ------------------------------------------------------------

@pytest.fixture(scope="module")
def official(tmp_path_factory):
    return examples.official_checkpoints(tmp_path_factory.mktemp("official"))


def test_load_method_reads_official_files_to_the_fixture_codes(official, fixtures_dir, tmp_path):
    ref = torch.load(fixtures_dir / "psp_tiny_ref.pt", weights_only=True)
    psp = load_method(official["psp"])
    assert isinstance(psp, PSPModule) and not psp.training
    torch.testing.assert_close(psp.invert(ref["x"]).codes, ref["codes"], rtol=0, atol=1e-4)
    torch.testing.assert_close(psp.reconstruct(psp.invert(ref["x"])), ref["images_32"], rtol=0, atol=3e-4)
    e4e_ref = torch.load(fixtures_dir / "e4e_tiny_ref.pt", weights_only=True)
    e4e = load_method(official["e4e"])
    assert isinstance(e4e, E4EModule) and e4e.stage == e4e.n_latent - 1
    torch.testing.assert_close(e4e.invert(ref["x"]).codes, e4e_ref["codes_stage18"], rtol=0, atol=1e-4)
    lsap = load_method(official["lsap_ganinverter"])  # GAN Inverter's layout: its wrapper, latent_avg [dim]
    assert isinstance(lsap, LSAPModule) and lsap.stage == lsap.n_latent - 1
    lsap_ref = torch.load(fixtures_dir / "lsap_ganinverter_tiny_ref.pt", weights_only=True)
    torch.testing.assert_close(lsap.invert(ref["x"]).codes, lsap_ref["codes"], rtol=0, atol=1e-4)
    made = json.loads((fixtures_dir / "manifest_lsap_ganinverter_tiny.json").read_text())  # by GAN Inverter's code
    built = torch.load(official["lsap_ganinverter"], weights_only=True)
    assert sorted(built) == made["top_level"] and all(
        {k: list(v.shape) for k, v in built[part].items()} == made[part] for part in ("encoder", "decoder"))
    torch.save({**built, "opts": {**built["opts"], "refine_mode": "hfgi"}}, tmp_path / "refiner.pt")
    with pytest.raises(CheckpointError, match="GAN Inverter hfgi checkpoint"):
        load_method(tmp_path / "refiner.pt")
    restyle_ref = torch.load(fixtures_dir / "restyle_tiny_ref.pt", weights_only=True)
    for prefix in ("psp_irse", "e4e_irse", "psp_resnet", "e4e_resnet"):
        r = load_method(official[f"restyle_{prefix}"])
        assert isinstance(r, ReStyleModule)
        steps = r.invert_steps(ref["x"], n_iters=3)
        for k, s in enumerate(steps):
            torch.testing.assert_close(s.latent, restyle_ref[f"{prefix}/latents"][k], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["toy_psp", "toy_psp_w", "toy_e4e", "toy_restyle_psp", "toy_restyle_e4e"])
def test_export_round_trips_through_load_official(runs, tmp_path, name):
    module = load_method(last(runs[name]))
    out = export_official(module, tmp_path / "export.pt")
    official = load_official(out)
    again = load_method(out)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(again.invert(x).codes, module.invert(x).codes, rtol=0, atol=1e-5)
    assert official.generator is not None and official.kind == name[4:].replace("_w", "")
    if isinstance(module, E4EModule) and module.regularisers is not None:
        assert official.discriminator is not None
    with pytest.raises(ValueError, match="no official checkpoint layout"):
        export_official(load_method(last(runs["toy_idinvert"])), tmp_path / "idinvert.pt")


def test_ganinv_export_checks_and_never_leaves_a_failed_file(runs, tmp_path, monkeypatch, capsys):
    from ganinv import methods
    from ganinv.commands import export

    e4e = last(runs["toy_e4e"])
    assert export.main([str(e4e), str(tmp_path / "good.pt")]) == 0
    assert "codes differ by 0.00e+00" in capsys.readouterr().out
    real = methods.load_method

    def drifting(path, generator=None):  # the file read back means something else
        module = real(path, generator)
        if str(path).endswith(".pt"):
            module.latent_avg += 0.1
        return module

    monkeypatch.setattr(methods, "load_method", drifting)
    assert export.main([str(e4e), str(tmp_path / "bad.pt")]) == 1
    assert "differ by 1.00e-01" in capsys.readouterr().err and not (tmp_path / "bad.pt").exists()


def test_load_method_checks_the_generator(runs, tiny_generator):
    psp = last(runs["toy_psp"])
    with pytest.raises(CheckpointError, match="last.ckpt: was trained with another generator"):
        load_method(psp, generator=tiny_generator)
    from ganinv.toy import load_generator

    assert isinstance(load_method(psp, generator=load_generator()), PSPModule)  # the same generator is accepted


def test_runs_saved_with_the_discriminators_options_elsewhere_still_load(runs, tmp_path):
    """Before `method.discriminator`, e4e kept its pool and discriminator rate in `loss`, In-Domain its rate as
    `discriminator_lr`: such checkpoints load with those values where they live now (a pool size other than the
    run's, 7, does not fit its saved pool: the old key is read)."""
    for name, old in (("toy_e4e", {"loss": {"w_pool_size": 7}}), ("toy_e4e", {"loss": {"w_pool_size": 50,
                                                                                        "discriminator_lr": 3e-5}}),
                      ("toy_idinvert", {"discriminator_lr": 3e-5})):
        raw = torch.load(last(runs[name]), weights_only=True)
        hp = raw["hyper_parameters"]
        if name == "toy_e4e":
            hp.pop("discriminator")
        else:  # In-Domain's discriminator node held its architecture only
            hp["discriminator"].pop("optimizer")
        hp.update({k: {**hp[k], **v} if isinstance(v, dict) else v for k, v in old.items()})
        torch.save(raw, tmp_path / f"{name}.ckpt")
        if old.get("loss", {}).get("w_pool_size") == 7:
            with pytest.raises(CheckpointError, match="does not rebuild as E4EModule"):
                load_method(tmp_path / f"{name}.ckpt")
            continue
        module = load_method(tmp_path / f"{name}.ckpt")
        kept = module.discriminator_cfg if name == "toy_e4e" else {"optimizer": module.discriminator_optimizer}
        assert kept["optimizer"]["lr"] == 3e-5 and kept.get("pool_size", 50) == 50
        assert type(module.configure_optimizers()[1]).__name__ == "Adam"


def test_every_method_and_experiment_config_instantiates(runs):
    narrow = {"idinvert": "method.encoder={channel_base:4,channel_max:16}",
              "hyperstyle": "++method.encoder={widths:[8,8,12,16],hyper_dim:16}", "hfgi": "method.start_from=avg",
              "styleres": "method.encoder.width=8"}
    for name in sorted(p.stem for p in (Path(CONF) / "method").glob("*.yaml")):
        with initialize_config_dir(CONF, version_base=None):
            cfg = compose("train", overrides=[f"method={name}", "loss/perceptual=toy", "loss/identity=toy",
                                              "data.toy.n_train=8", "data.toy.n_val=4",
                                              narrow.get(name, "++method.encoder={widths:[8,8,12,16]}"),
                                              *on_e4e(f"toy_{name}", runs["toy_e4e"])])
        model, _ = build(cfg)
        assert model.n_latent == 10 and model.encoder is not None
    for name in RECIPES:
        model, dm = build(config(name, Path("unused"), 5, "data.toy.n_train=8", *on_e4e(name, runs["toy_e4e"])))
        assert dm.input_size == model.input_size == 64


def test_any_encoder_may_weigh_lsaps_alignment_and_methods_on_a_base_may_not(runs):
    """`+loss.weights.sncd=<w>` adds LSAP's term to pSp, ReStyle and In-Domain (their training terms, weighed);
    HyperStyle and HFGI, whose codes are their frozen base's, refuse it by name."""
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for name in ("toy_psp", "toy_restyle_psp", "toy_idinvert"):
        model, _ = build(config(name, Path("unused"), 5, "+loss.weights.sncd=0.5", "+method.anchor_samples=500",
                                *SMALL[name]))
        if name == "toy_restyle_psp":  # a training step's codes (its `encode` is the inference loop)
            latent, y_hat = model.start(x)
            codes = model.step(x, latent.detach(), y_hat.detach()).latent
        else:
            codes = model.encode(x)
        terms = model.alignment_terms(codes)
        assert model.weights["sncd"] == 0.5 and set(terms) == {"sncd"} and terms["sncd"].requires_grad, name
        assert float(terms["sncd"]) < 0  # −Σ ⟨unit style, anchor⟩: each layer's anchor is a mean of unit vectors
    plain, _ = build(config("toy_psp", Path("unused"), 5, *SMALL["toy_psp"]))
    assert plain.weights["sncd"] == 0 and plain.alignment_terms(plain.encode(x)) == {}
    with pytest.raises(ConfigError, match="loss.weights.sncd is not a term of HFGIModule"):
        build(config("toy_hfgi", Path("unused"), 5, "+loss.weights.sncd=0.5", *SMALL["toy_hfgi"],
                     *on_e4e("toy_hfgi", runs["toy_e4e"])))


def test_image_to_image_task_sets_the_input_channels(tmp_path):
    run = train(config("toy_psp", tmp_path, 2, "data.task=segmentation_to_image", "data.batch_size=4",
                       "method.encoder.widths=[8,8,12,16]")).run
    module = load_method(run / "checkpoints" / "last.ckpt")
    assert module.input_nc == 9 and module.encoder.input_layer[0].in_channels == 9
    assert module.invert(torch.zeros(1, 9, 64, 64)).codes.shape == (1, 10, 128)


def test_style_mixing_takes_the_other_codes_from_inject_index():
    codes, other = torch.zeros(2, 10, 4), torch.ones(2, 10, 4)
    mixed = PSPModule.mix(codes, other, inject_index=6, alpha=0.25)
    assert torch.equal(mixed[:, :6], codes[:, :6]) and torch.allclose(mixed[:, 6:], torch.full((2, 4, 4), 0.25))


def test_invert_and_export_commands(runs, tmp_path):
    from ganinv.commands.export import main as export_main
    from ganinv.configs import CONF as conf
    from ganinv.toy import render
    from ganinv.workflows.inverter import invert_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(render(3, 48, seed=9).images):
        save_image(img * 0.5 + 0.5, photos / f"{i}.png")
    (photos / "broken.png").write_bytes(b"not an image")
    idinvert, psp = last(runs["toy_idinvert"]), last(runs["toy_psp"])
    for name, overrides in (("psp", [f"checkpoint={psp}"]),
                            ("refined", [f"checkpoint={psp}", "refine=idinvert", f"refine.checkpoint={idinvert}"]),
                            ("optim", ["refine=optim_w", "refine.steps=3"])):
        with initialize_config_dir(conf, version_base=None):
            cfg = compose("invert", overrides=[f"input={photos}", f"output={tmp_path / name}", "max_bad_fraction=0.5",
                                               *overrides])
        with pytest.warns(UserWarning, match="broken.png"):
            out = invert_folder(cfg)[0]
        codes = torch.load(out / "codes.pt", weights_only=True)
        assert sorted(codes) == ["0.png", "1.png", "2.png"] and codes["0.png"].shape == (10, 128)
        assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png", "2.png"]
    assert export_main([str(psp), str(tmp_path / "psp_official.pt")]) == 0
    assert export_main([str(idinvert), str(tmp_path / "no.pt")]) == 2  # no official layout: one line, exit 2


def test_refine_options_override_the_runs_refinement(runs):
    from omegaconf import OmegaConf

    from ganinv.methods import ConfigError
    from ganinv.workflows.inverter import configured_refiner

    module = load_method(last(runs["toy_idinvert"]))
    node = {"_target_": "ganinv.refine.DomainRegularisedOptimiser", "checkpoint": None, "steps": 7, "lr": None}
    cfg = OmegaConf.create({"checkpoint": "run.ckpt", "refine": node, "loss": None})
    refiner = configured_refiner(cfg, module)
    assert refiner.options == {**module.refine, "steps": 7} and module.refine["steps"] != 7
    cfg.refine.stepz = 7
    with pytest.raises(ConfigError, match="stepz.*encoder_weight"):
        configured_refiner(cfg, module)


def test_unknown_names_list_the_available_ones(tmp_path):
    import subprocess
    import sys

    for override, listed in (("method=pspp", "psp_w"), ("generator=ffhq", "ffhq1024"), ("data=imgs", "images")):
        run = subprocess.run([sys.executable, "-m", "ganinv.commands.train",
                              override], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode != 0 and listed in run.stderr and "Traceback" not in run.stderr, run.stderr[-1500:]


@pytest.mark.slow  # four fits of 3 images: 15-30 s
def test_latent_optimisation_fits_and_w_plus_fits_better_than_w():
    from omegaconf import OmegaConf

    from ganinv.methods import AverageCode, build_loss_nets
    from ganinv.refine import CodeOptimiser
    from ganinv.toy import load_generator, render

    with initialize_config_dir(CONF, version_base=None):
        loss = OmegaConf.to_container(compose("invert", overrides=["input=x", "output=y"]).loss)
    start_from, x = AverageCode(load_generator()).eval(), render(3, 64, seed=4).images
    err = {}
    for space, noise in (("w", "fixed"), ("w+", "fixed"), ("w+", "optimize")):
        fit = CodeOptimiser(start_from, build_loss_nets(loss)["perceptual"], space=space, steps=40, lr=0.05,
                            noise=noise)(start_from.invert(x), x)
        with torch.no_grad():
            err[space, noise] = float(F.mse_loss(start_from.reconstruct(fit), x))
            start = float(F.mse_loss(start_from.reconstruct(start_from.invert(x)), x))
        assert fit.codes.shape == (3, 10, 128) and (fit.noise is not None) == (noise == "optimize")
        if space == "w":
            assert torch.equal(fit.codes[:, 0], fit.codes[:, -1])  # one code on every layer
    assert max(err.values()) < start and err["w+", "fixed"] < err["w", "fixed"], (start, err)


@pytest.mark.slow  # a training and four commands on two methods: 20-30 s
def test_methods_on_a_base_are_evaluated_inverted_edited_and_ranked(runs, tmp_path):
    """HyperStyle and HFGI through every command: training callbacks, ganinv-eval, -invert (their per-image state
    saved), -edit (from the checkpoint and from the saved inversions), and the leaderboard."""
    from ganinv.toy import render
    from ganinv.workflows.editing import edit_grid
    from ganinv.workflows.evaluation import evaluate
    from ganinv.workflows.inverter import invert_folder, load_inversions
    from ganinv.workflows.leaderboard import leaderboard

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(render(2, 64, seed=9).images):
        save_image(img * 0.5 + 0.5, photos / f"{i}.png")
    small = ("n_images=4", "editability.lec_images=2", "editability.p_norm_samples=500", "fid=none", "batch_size=2")
    for name, label, method, state in (("toy_hyperstyle", "HyperStyle (on e4e)", "HyperStyleModule", "offsets"),
                                       ("toy_hfgi", "HFGI (on e4e)", "HFGIModule", "residual")):
        if name == "toy_hfgi":  # the training callbacks on a method with per-image state (its residual)
            run = tmp_path / name
            train(config(name, run, 2, "data.batch_size=4", "trainer.val_check_interval=2",
                         "callbacks.metrics.every=1", "callbacks.metrics.n_images=4", "editability.lec_images=1",
                         "editability.p_norm_samples=500", *SMALL[name], *on_e4e(name, runs["toy_e4e"])))
            assert json.loads((run / "record.json").read_text())["timing"]["seconds_per_image"] > 0
        ckpt = last(runs[name])
        record = json.loads(evaluate(composed("eval", f"checkpoint={ckpt}", *small,
                                              f"output={tmp_path}/records/{name}.json")).read_text())
        assert record["name"] == label and record["method"] == method
        assert {"mse", "lec", "edit_gain"} <= set(record["metrics"]) and record["timing"]["seconds_per_image"] > 0
        out, _ = invert_folder(composed("invert", f"checkpoint={ckpt}", f"input={photos}",
                                        f"output={tmp_path}/{name}_inv"))
        assert getattr(load_inversions(out)["0.png"], state) is not None
        for source in ([], [f"inverted={out}"]):
            grid, _ = edit_grid(composed("edit", f"checkpoint={ckpt}", f"input={photos}", *source, "edits=[smile]",
                                         "strengths=[0,3]", f"output={tmp_path}/{name}_{len(source)}.png"))
            assert grid.exists()
    names = {e.name for e in leaderboard(composed("leaderboard", f"input={tmp_path}/records", "show=[]"))}
    assert names == {"HyperStyle (on e4e)", "HFGI (on e4e)"}


def test_in_domain_discriminator_judges_targets_smaller_than_the_generator():
    """A 1024-px generator trains on 256-px targets by default: In-Domain's discriminator judges them at that size
    (here the 64-px toy generator and 32-px inputs and targets)."""
    from ganinv.benchmarks import measure, nets
    from ganinv.methods import method_from_config
    from ganinv.toy import load_generator

    cfg = nets.compose_method("idinvert", "toy")
    module = method_from_config(cfg.method, load_generator(), cfg.loss, input_nc=3, input_size=32,
                                max_iterations=10**9)
    logged = {}
    measure.train_steps(module, logged.__setitem__)(measure.random_batch(2, 32, "cpu"))
    assert {"train/d_loss", "train/adversarial"} <= set(logged) and all(map(math.isfinite, logged.values()))
