"""Every config group composes, and the generator configs instantiate through the checkpoint loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import open_dict

from ganinv.checkpoints import CheckpointError

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "generator").glob("*.yaml") if p.stem != "toy"))
def test_generator_configs(name, fixtures_dir, tmp_path):
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("train", overrides=[f"generator={name}", f"weights_dir={tmp_path}"])
    with pytest.raises((CheckpointError, InstantiationException), match=f"{tmp_path}.*no such file"):
        instantiate(cfg.generator)
    with open_dict(cfg):  # the same target with the tiny fixture and the architecture read from the file
        cfg.generator = {"_target_": cfg.generator._target_, "path": str(fixtures_dir / "rosinality_tiny.pt")}
    g = instantiate(cfg.generator)
    assert g.n_latent == 8 and g.latent_avg.shape == (64,)


def test_toy_generator_config_loads_the_committed_generator():
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("train", overrides=["generator=toy"])
    g = instantiate(cfg.generator)
    assert g.size == 64 and g.n_latent == 10 and g.latent_avg.shape == (128,)
