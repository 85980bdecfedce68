"""The slow tier's shared fixture: `trained`, the recipes of the learning test file asking (its `RECIPES`), trained
once for that file (tests/learning.py)."""

from __future__ import annotations

import pytest

from tests.learning import train_recipes


@pytest.fixture(scope="module")
def trained(request, tmp_path_factory) -> dict:
    return train_recipes(request.module.RECIPES, tmp_path_factory)
