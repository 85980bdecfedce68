"""Every method on the device against the CPU path (`pytest -m gpu`, `make gpu-check`), float32 without TF32:

- a training iteration (every optimiser step of the method, discriminators included) logs the same losses (relative
  difference ≤ 1e-3) and leaves the same gradients (relative L2 distance per tensor ≤ 1e-2: the iteration's
  earlier Adam-type steps normalise gradients, so a tiny gradient's rounding moves a weight by up to the learning
  rate);
- inversion and reconstruction give the same codes (≤ 1e-4) and images (≤ 1e-3, values in [-1, 1]);
- under bf16 autocast (speed.autocast=bf16, the generator in float32) the logged losses stay within 5 % of
  float32 (the discriminators' R1 penalties, gradients of bf16 activations, within 15 %) and the reconstructions
  within a mean absolute 0.05.

The methods are the toy recipes' architectures with random weights (`ganinv.benchmarks.nets`), HyperStyle and
HFGI on a random e4e."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from ganinv.benchmarks import measure, nets

pytestmark = pytest.mark.gpu
_BUILT: dict[str, torch.nn.Module] = {}


def method(name: str):
    """The toy `name` with random weights on the CPU, built once per test process (copied by each test)."""
    if name not in _BUILT:
        from ganinv.toy import load_generator

        _BUILT[name] = nets.build_method(name, "toy", load_generator())
    return _BUILT[name]


def iteration(model, batch: dict, autocast: str | None = None) -> dict[str, float]:
    """One training iteration; what it logged."""
    logged: dict[str, float] = {}
    model.use_speed(autocast=autocast)
    measure.train_steps(model, lambda name, value: logged.__setitem__(name, value))(batch)
    return logged


def on(batch: dict, device: str) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


@pytest.mark.parametrize("name", nets.METHODS)
def test_a_training_iteration_on_the_device_equals_the_cpu(name, device):
    cpu, dev = nets.copy_to(method(name), "cpu"), nets.copy_to(method(name), device)
    batch = measure.random_batch(2, cpu.input_size, "cpu")
    want, got = iteration(cpu, batch), iteration(dev, on(batch, device))
    assert want and want.keys() == got.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-3 * max(abs(value), 1e-3), (key, value, got[key])
    checked = 0
    for (n, p), q in zip(cpu.named_parameters(), dev.parameters()):
        if p.grad is None:
            assert q.grad is None, n
            continue
        scale = float(p.grad.norm())
        if scale > 0:
            assert float((q.grad.cpu() - p.grad).norm()) <= 1e-2 * scale, n
            checked += 1
    assert checked


@pytest.mark.parametrize("name", nets.METHODS)
def test_inversion_on_the_device_equals_the_cpu(name, device):
    cpu, dev = nets.copy_to(method(name), "cpu").eval(), nets.copy_to(method(name), device).eval()
    x = measure.random_batch(2, cpu.input_size, "cpu")["x"]
    want, got = cpu.invert(x), dev.invert(x.to(device))
    assert_close(got.codes.cpu(), want.codes, rtol=0, atol=1e-4)
    with torch.no_grad():
        assert_close(dev.reconstruct(got).cpu(), cpu.reconstruct(want), rtol=0, atol=1e-3)


@pytest.mark.parametrize("name", nets.METHODS)
def test_bf16_autocast_stays_close_to_float32(name, device):
    fp32, bf16 = nets.copy_to(method(name), device), nets.copy_to(method(name), device)
    batch = on(measure.random_batch(2, fp32.input_size, "cpu"), device)
    want, got = iteration(fp32, batch), iteration(bf16, batch, "bf16")
    for key, value in want.items():
        tolerance = 0.15 if "r1" in key else 0.05
        assert abs(got[key] - value) <= tolerance * max(abs(value), 1e-2), (key, value, got[key])
    fp32.eval(), bf16.eval()
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        low = bf16.reconstruct(bf16.invert(batch["x"]))
    with torch.no_grad():
        high = fp32.reconstruct(fp32.invert(batch["x"]))
    assert low.dtype == torch.float32 and float((low - high).abs().mean()) < 0.05
