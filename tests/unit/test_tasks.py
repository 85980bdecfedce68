"""Every pSp image-to-image task trains and validates end to end through `ganinv-train`: the validation callbacks
invert the task's input `x` and score the reconstruction against its target `y`."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from ganinv.configs import CONF
from ganinv.data.transforms import resize
from ganinv.methods import load_method
from ganinv.workflows.training import train
from tests.runs import THREADS

TASKS = ["inversion", "super_resolution", "inpainting", "segmentation_to_image", "sketch_to_image", "frontalization"]


def run_task(task: str, run_dir) -> None:
    with initialize_config_dir(CONF, version_base=None):
        cfg = compose("train", overrides=[
            "experiment=toy_psp", f"data.task={task}", "trainer.max_steps=2", "trainer.val_check_interval=2",
            f"run_dir={run_dir}", "logger=none", "data.batch_size=4", "data.toy.n_val=8",
            "method.encoder.widths=[8,8,12,16]", "callbacks.metrics.n_images=6", "editability.lec_images=2",
            "editability.p_norm_samples=500", "callbacks.images.n_images=4", THREADS,
            "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"])
    train(cfg)
    return cfg


@pytest.mark.parametrize("task", TASKS)
def test_every_task_trains_and_validates_on_its_inputs(task, tmp_path):
    from hydra.utils import instantiate

    cfg = run_task(task, tmp_path)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["data"]["n_images"] == 6 and (tmp_path / "images" / "iteration_000002.png").exists()
    module = load_method(tmp_path / "checkpoints" / "last.ckpt")
    dm = instantiate(cfg.data)
    dm.setup("fit")
    items = [dm.val_set[i] for i in range(6)]
    x, y = torch.stack([i["x"] for i in items]), torch.stack([i["y"] for i in items])
    assert module.input_nc == x.shape[1]
    with torch.no_grad():
        rec = module.reconstruct(module.invert(x)).clamp(-1, 1)
    expected = float(F.mse_loss(resize(rec, y.shape[-1]), y))
    assert record["metrics"]["mse"] == pytest.approx(expected, rel=1e-4)
    if not torch.equal(x, y) and x.shape == y.shape:  # e.g. super-resolution: the target itself is not what is scored
        with torch.no_grad():
            of_target = float(F.mse_loss(module.reconstruct(module.invert(y)).clamp(-1, 1), y))
        assert abs(of_target - expected) > 1e-6
    assert ("lec" in record["metrics"]) == (x.shape[1] == 3)  # LEC re-inverts RGB edits: RGB inputs only
