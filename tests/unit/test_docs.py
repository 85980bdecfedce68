"""Every README and docs snippet runs as written, against files the repository ships.

In a folder where the file names the docs use are links to the tiny fixtures (see `workdir`), each page's bash
lines that start with `ganinv-` run first, each by its console script's entry point in this process —
`ganinv-train*` and `ganinv-eval` with `--cfg job` (composition only; a real run trains for hours, an evaluation
takes minutes; a multirun's first job), the others as written — then its Python blocks, in order, in one namespace.
Install and test commands (`make`, `pip`, `source`) are not run here: CI runs them; nor is `wandb` (it needs a W&B
server).
"""

from __future__ import annotations

import re
import shlex
from importlib.metadata import distribution
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data as skimage
from torchvision.utils import save_image

from ganinv.checkpoints import load_generator
from ganinv.editing import sefa
from ganinv.metrics.records import make_record, write_record
from ganinv.refine.face_parsing import BiSeNet
from ganinv.toy import render
from ganinv.toy.nets import ASSETS
from ganinv.workflows.training import train
from tests.commands import run_main
from tests.fixtures import examples
from tests.runs import config as method_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCRIPTS = {e.name: e for e in distribution("ganinv").entry_points if e.group == "console_scripts"}
NOT_RUN = ("make", "pip", "source", "python -m pytest", "wandb ")
COMPOSE_ONLY = ("ganinv-train", "ganinv-eval")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder holding every file name the docs use, linked to a shipped (or built-from-shipped) fixture."""
    d = tmp_path_factory.mktemp("docs")
    built = examples.official_checkpoints(d / "_built")
    files = {
        "stylegan2-ffhq-config-f.pt": examples.FIXTURES / "rosinality_tiny.pt",
        "network-snapshot-025000.pkl": examples.nvidia_pickle(d / "_built" / "nvidia_tiny.pkl"),
        "psp_ffhq_encode.pt": built["psp"],
        "e4e_ffhq_encode.pt": built["e4e"],
        "restyle_e4e_ffhq_encode.pt": built["restyle_e4e_irse"],
        "encoder_only.pt": examples.FIXTURES / "psp_tiny.pt",
        "runs/toy_gan/generator.pt": ASSETS / "generator.pt",
    }
    for name, src in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).symlink_to(src)
    phone = d / "phone_photos"  # photos.md: a real portrait and a photo without a face
    phone.mkdir()
    Image.fromarray(skimage.astronaut()).save(phone / "portrait.jpg", quality=95)
    Image.fromarray(skimage.coffee()).save(phone / "coffee.jpg", quality=95)
    (d / "weights").mkdir()  # a face parser's weights in the released layout (refine.parser=bisenet)
    torch.save(BiSeNet().state_dict(), d / "weights" / "79999_iter.pth")
    examples.sam_predictor(d / "weights" / "invertibility_faces_sg2.pt")  # SAM's released predictor layout
    (d / "directions").mkdir()
    sefa(load_generator(examples.FIXTURES / "rosinality_tiny.pt")).save(d / "directions" / "ffhq_sefa.pt")
    photos = d / "photos"
    photos.mkdir()
    renders = render(3, 64, seed=5).images
    for i, img in enumerate(renders):
        save_image(img * 0.5 + 0.5, photos / f"{i}.png")
    for name, mse, lec in (("pSp", 0.02, 12.0), ("e4e", 0.03, 8.0)):  # records, for ganinv-leaderboard
        write_record(make_record(name, name, {"mse": mse, "lec": lec, "perceptual": 10 * mse, "p_norm": lec}),
                     d / "eval" / f"{name}.json")
    for exp in ("toy_psp", "toy_e4e"):  # a multirun's records, for the leaderboard of a sweep
        for seed in (0, 1, 2):
            write_record(make_record(exp, exp, {"mse": 0.02 + seed / 1000, "lec": 8.0}, group=exp, seed=seed,
                                     overrides=f"experiment={exp}"),
                         d / "sweeps" / "toy" / f"experiment={exp},seed={seed}" / "record.json")
    # a trained run, for the commands that take one (2 iterations of a narrow pSp on the toy domain)
    run = d / "runs" / "psp" / "2026-12-01_10-00-00"
    train(method_config("toy_psp", run, 2, "method.encoder.widths=[8,8,12,16]", "data.batch_size=4",
                        "trainer.val_check_interval=2"))
    return d


def first_job(args: list[str]) -> list[str]:
    """A multirun command (`-m`) as its first job: each swept value (`a=1,2`, `interval(0,1)`) its first."""
    if "-m" not in args:
        return args
    out = []
    for a in args:
        key, eq, value = a.partition("=")
        if eq and (m := re.match(r"(?:interval|range|choice)\(([^,)]+)", value)):
            value = m.group(1)
        elif eq and "," in value and not value.startswith(("[", "{")):
            value = value.split(",")[0]
        out += [] if a == "-m" else [f"{key}{eq}{value}"]
    return out


def blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", page.read_text(), re.M | re.S)


def test_every_page_has_a_worked_example():
    """Each page shows a command or a Python block that `test_page_runs_as_written` runs."""
    def runs(page: Path) -> bool:
        lines = (line.strip() for b in blocks(page, "bash") for line in re.sub(r"\\\n\s*", "", b).splitlines())
        return any(line.startswith("ganinv-") for line in lines) or bool(blocks(page, "python"))

    assert [p.name for p in PAGES if not runs(p)] == []


# editing.md: two InterFaceGAN fits of 1000 samples, a minute on two cores, whose command the unit tests run too
# (tests/unit/test_editing.py): make test-all. Every other page runs in seconds.
SLOW_PAGES = ("editing.md",)


RAN: set[tuple[str, ...]] = set()  # commands that ran without error in this session's workdir


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW_PAGES else p
                                  for p in PAGES], ids=lambda p: p.name)
def test_page_runs_as_written(page, workdir, monkeypatch, capsys):
    """A page's commands first (as a reader would run them: each console script's `main()`, in this process, from
    the work folder), then its Python blocks in one namespace."""
    monkeypatch.chdir(workdir)
    for block in blocks(page, "bash"):
        for line in re.sub(r"\\\n\s*", "", block).splitlines():  # continued lines joined
            line = line.split("  #")[0].strip()
            if not line or line.startswith(("#", *NOT_RUN)):
                continue
            assert line.startswith("ganinv-"), f"{page.name}: unexpected command {line!r}"
            args = shlex.split(line)
            if args[0].startswith(COMPOSE_ONLY):
                args = first_job(args) + ["--cfg=job"]
            if tuple(args) in RAN:  # the same command in the same folder, already run for another page
                continue
            assert args[0] in SCRIPTS, f"{page.name}: {args[0]} is not a console script of ganinv"
            run = run_main(SCRIPTS[args[0]].load(), args, monkeypatch, capsys)  # as its console script runs it
            assert run.returncode == 0, f"{page.name}: {line}\n{run.stderr[-2000:]}"
            RAN.add(tuple(args))
    namespace: dict = {}
    for code in blocks(page, "python"):
        exec(compile(code, f"{page.name} snippet", "exec"), namespace)  # noqa: S102 - our own documentation
