"""Training speed options (`speed.*`): bf16 autocast reaches the encoder and the loss networks but never the
generator, channels_last and compile keep what a checkpoint holds, and the iteration counter needs no device read."""

from __future__ import annotations

import pytest
import torch

from ganinv.methods import ConfigError
from ganinv.methods.base import native_bf16
from ganinv.workflows.training import build
from tests.runs import config


def model(tmp_path, *speed: str):
    torch.manual_seed(0)
    module, dm = build(config("toy_psp", tmp_path, 2, "method.encoder.widths=[8,8,12,16]", "data.batch_size=4",
                              *speed))
    dm.setup("fit")
    return module, next(iter(dm.train_dataloader()))


def test_bf16_autocast_leaves_the_generator_in_float32(tmp_path):
    module, batch = model(tmp_path, "speed.autocast=bf16")
    seen = {}

    def dtype_of(name):
        def hook(module, inputs, output) -> None:
            seen[name] = (output[0] if isinstance(output, tuple) else output).dtype

        return hook

    module.encoder.register_forward_hook(dtype_of("encoder"))
    module.generator.register_forward_hook(dtype_of("generator"))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=module.autocast):  # as training_step
        loss = module.train_step(batch)
    loss.backward()
    assert seen == {"encoder": torch.bfloat16, "generator": torch.float32}
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in module.encoder.parameters())
    with pytest.raises(ConfigError, match="speed.autocast='fp16'"):
        module.use_speed(autocast="fp16")
    module.use_speed(autocast="auto")
    assert module.autocast == native_bf16("cpu")


def test_channels_last_and_compile_keep_the_checkpoint(tmp_path):
    plain, _ = model(tmp_path)
    fast, batch = model(tmp_path, "speed.channels_last=true", "speed.compile=true")
    assert list(fast.state_dict()) == list(plain.state_dict())
    conv = next(m for m in fast.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_the_iteration_counter_follows_loads(tmp_path):
    module, _ = model(tmp_path)
    assert module.iterations_done() == 0
    state = {**module.state_dict(), "iteration": torch.tensor(7)}
    module.load_state_dict(state)
    assert module.iterations_done() == 7
