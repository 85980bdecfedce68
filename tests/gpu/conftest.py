"""The device the CUDA tests run on: `cuda` (skipped where there is none), or what GANINV_TEST_DEVICE names, so
that `ganinv-gpu-check` on a CPU shows the tests run (CPU against CPU: no CUDA numerics are checked then)."""

from __future__ import annotations

import os

import pytest
import torch

DEVICE = os.environ.get("GANINV_TEST_DEVICE", "cuda")


def pytest_collection_modifyitems(config, items):
    if DEVICE == "cuda" and not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture()
def device() -> str:
    return DEVICE


@pytest.fixture(autouse=True)
def exact_matmul():
    """TF32 would change the last bits; the tolerances are for float32."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
