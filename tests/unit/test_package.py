"""A non-editable wheel install runs every console script with its shipped configs."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from importlib.metadata import distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {e.name for e in distribution("ganinv").entry_points if e.group == "console_scripts"}
# How each script shows it found its configs without doing any work.
CHECKS = {"ganinv-convert": [["--help"]], "ganinv-export": [["--help"]],
          "ganinv-directions": [["output=d.pt", "--cfg", "job"], ["--help"]],
          "ganinv-train": [["--cfg", "job"], ["experiment=toy_e4e", "--cfg", "job"], ["--help"]],
          "ganinv-invert": [["input=in", "output=out", "checkpoint=x.ckpt", "--cfg", "job"], ["--help"]],
          "ganinv-train-generator": [["--cfg", "job"], ["data=images", "data.images.root=/x", "--cfg", "job"],
                                     ["data=generated", "--cfg", "job"], ["--help"]],
          "ganinv-eval": [["checkpoint=x.ckpt", "output=r.json", "--cfg", "job"],
                          ["metrics=faces_papers", "--cfg", "job"], ["--help"]],
          "ganinv-edit": [["checkpoint=x.ckpt", "input=in", "output=g.png", "--cfg", "job"], ["--help"]],
          "ganinv-leaderboard": [["input=eval", "--cfg", "job"], ["--help"]],
          "ganinv-align": [["input=photos", "output=aligned", "--cfg", "job"], ["--help"]],
          "ganinv-gpu-check": [["out=report", "--cfg", "job"], ["--help"]],
          "ganinv-train-invertibility": [["checkpoint=x.ckpt", "output=p.pt", "--cfg", "job"], ["--help"]]}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, capture_output=True)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    # The dependencies come from this environment (offline); ganinv itself only from the wheel.
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((tmp / "dist").glob("ganinv-*.whl"))
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True)
    return venv


def test_every_console_script_is_checked():
    assert set(CHECKS) == set(SCRIPTS)


@pytest.mark.slow  # builds and installs the wheel, runs every script: 90 s
def test_wheel_ships_the_configs_and_runs_every_script(wheel_venv, tmp_path):
    py = wheel_venv / "bin" / "python"
    where = subprocess.run([py, "-c", "import ganinv, ganinv.configs as c; print(ganinv.__file__); print(c.CONF)"],
                           cwd=tmp_path, check=True, capture_output=True, text=True).stdout.split()
    assert all(str(wheel_venv) in p for p in where), where  # not this checkout
    assert (Path(where[1]) / "data" / "images.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": ""}
    for script, runs in CHECKS.items():
        for args in runs:
            run = subprocess.run([wheel_venv / "bin" / script, *args], cwd=tmp_path, capture_output=True, text=True,
                                 env=env, timeout=120)
            assert run.returncode == 0, (script, args, run.stderr[-2000:])
            assert "Traceback" not in run.stderr
            if "--cfg" in args and script in ("ganinv-train", "ganinv-train-generator", "ganinv-eval"):
                assert "_target_: ganinv.data.StyleGAN2DataModule" in run.stdout


def test_git_ignores_no_source_file():
    """A clean clone (what CI and users get) has every file of the package, its configs, tests and docs: a
    folder pattern in .gitignore meant for an output folder must not hide a source folder of the same name."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", "ganinv",
                              "tests", "experiments", "docs"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    caches = ("__pycache__", ".egg-info", ".pytest_cache", ".ruff_cache")
    assert [f for f in ignored if not any(c in f for c in caches)] == []
