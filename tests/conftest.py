"""Shared test fixtures: the reference fixture folder and a tiny 32-px generator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


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
