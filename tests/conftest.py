"""Shared test fixtures: the reference fixture folder and a tiny 32-px generator; tests leave the checkout as they
found it."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
OUTPUTS = ("runs", "multirun", "sweeps", "outputs", "wandb", "lightning_logs", "demo", "eval", "inverted")

if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several test processes: one thread each, in its commands too
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def renders(tmp_path_factory) -> Path:
    """A folder of three toy renders (`face_<i>.png`, 64 px), read-only."""
    from torchvision.utils import save_image

    from ganinv.toy import render

    folder = tmp_path_factory.mktemp("renders")
    for i, img in enumerate(render(3, 64, 4321).images):
        save_image(img * 0.5 + 0.5, folder / f"face_{i}.png")
    return folder


@pytest.fixture()
def tiny_generator():
    """A random 32-px, 64-channel generator (8 latents), frozen, with latent_avg set."""
    from ganinv.stylegan2 import Generator

    torch.manual_seed(0)
    g = Generator(32, 64, 2, channel_max=64).eval().requires_grad_(False)
    g.latent_avg = g.mean_latent(1024)[0]
    return g


@pytest.fixture(autouse=True)
def _no_log_files_of_removed_runs():
    """A command run in this process leaves Hydra's job log handler (`<run_dir>/train.log`) on the root logger;
    once that test's folder is gone, the next log line there would fail. Such handlers go after each test."""
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, logging.FileHandler) and not Path(h.baseFilename).parent.exists():
            root.removeHandler(h)
            h.close()


def _checkout_state() -> tuple[str, dict[str, float]]:
    """The checkout's untracked files (as git reports them) and the output folders commands write by default."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                            capture_output=True, text=True).stdout
    untracked = "".join(line + "\n" for line in status.splitlines() if line.startswith("??"))
    return untracked, {name: (ROOT / name).stat().st_mtime for name in OUTPUTS if (ROOT / name).exists()}


@pytest.fixture(scope="session", autouse=True)
def _tests_write_only_under_their_temporary_folders():
    """Nothing a test makes lands in the checkout (it would be committed, or mistaken for a user's runs)."""
    before = _checkout_state()
    yield
    after = _checkout_state()
    assert after[1] == before[1], f"tests wrote into the checkout's output folders: {after[1]} (was {before[1]})"
    new = set(after[0].splitlines()) - set(before[0].splitlines())
    assert not new, f"tests left files in the checkout: {sorted(new)}"
