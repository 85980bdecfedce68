"""What a device check measures, one function each: training images/s and peak memory (`training_speed`), batch-1
encode and decode latency (`latency`), an optimiser's seconds per step (`optimiser_speed`); `train_steps` runs a
method's training iterations outside a Trainer, as `training_step` runs them."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

import torch

# speed options of ganinv-train (docs/scaling.md#training-speed), each as `use_speed` arguments
OPTIONS = {"fp32": {}, "bf16": {"autocast": "bf16"}, "bf16+channels_last": {"autocast": "bf16", "channels_last": True},
           "compile": {"compile": True}}


class Clock:
    """Wall time of work on `device`: CUDA events there (the GPU's own time, the host waits once), else the
    performance counter."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def time(self, work: Callable[[], object]) -> tuple[float, object]:
        """(seconds, result) of `work()`."""
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = work()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000, out
        began = time.perf_counter()
        out = work()
        return time.perf_counter() - began, out


def reset_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib(device: str) -> float:
    """Peak GPU memory allocated since `reset_memory` (CUDA); the process's peak resident memory so far (CPU)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


LATE = 10**6  # an iteration late in training: every progressive stage (e4e, ReStyle-e4e) active, as for most of a run


def train_steps(model, log: Callable[[str, float], None] | None = None, at: int = LATE) -> Callable[[dict], None]:
    """One training iteration of `model` on a batch per call, as Lightning's `training_step` runs it (autocast,
    the method's own optimiser steps where it has several players, the iteration counter), without a Trainer,
    from iteration `at`; what the method logs goes to `log(name, value)`."""
    model.iteration.fill_(at)
    opts = model.configure_optimizers()
    opts = list(opts) if isinstance(opts, (list, tuple)) else [opts]
    model.optimizers = lambda: opts if len(opts) > 1 else opts[0]
    model.manual_backward = lambda loss: loss.backward()
    if log is None:
        model.log = model.log_dict = lambda *a, **k: None
    else:
        model.log = lambda name, value, *a, **k: log(name, float(value))
        model.log_dict = lambda values, *a, **k: [log(n, float(v)) for n, v in values.items()]
    model.train()

    def step(batch: dict) -> None:
        loss = model.training_step(batch, 0)
        if loss is not None:  # automatic optimisation: the step Lightning would take
            opts[0].zero_grad()
            loss.backward()
            opts[0].step()

    return step


def random_batch(batch: int, input_size: int, device: str, seed: int = 0) -> dict:
    """Inputs and targets in [-1, 1] at the encoder's input size (pSp's protocol: targets at 256 px)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, input_size, input_size, generator=g) * 2 - 1
    return {"x": x.to(device), "y": x.clone().to(device)}


def count_flops(work: Callable[[], object]) -> int:
    """Floating-point operations of `work()`: matmuls and convolutions, forward and backward, by torch's FLOP
    formulas (`torch.utils.flop_counter`), counted at dispatch without its module hooks, which a gradient
    penalty's double backward (R1) cannot pass through."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **(kwargs or {}), out_val=out)
            return out

    with Count() as counter:
        work()
    return counter.total


def training_speed(model, batch: dict, device: str, steps: int, warmup: int, flops: bool = False) -> dict:
    """Images/s of `steps` training iterations after `warmup` (the first compiles where torch.compile is on), peak
    memory, the first iteration's seconds and, with `flops`, the FLOPs of one iteration (counted in one more,
    untimed, warm-up) and the rate they were computed at."""
    step, clock = train_steps(model), Clock(device)
    reset_memory(device)
    first = [clock.time(lambda: step(batch))[0] for _ in range(max(1, warmup))][0]
    counted = count_flops(lambda: step(batch)) if flops else None
    seconds = [clock.time(lambda: step(batch))[0] for _ in range(steps)]
    n = len(next(iter(batch.values())))
    out = {"images_per_s": n / statistics.median(seconds), "batch": n, "steps": steps,
           "step_s": statistics.median(seconds), "first_step_s": first, "peak_gib": peak_memory_gib(device)}
    if counted:
        out |= {"gflop_per_step": counted / 1e9, "tflop_per_s": counted / statistics.median(seconds) / 1e12}
    return out


@torch.no_grad()
def latency(model, input_size: int, device: str, repeats: int, warmup: int) -> dict:
    """Batch-1 latency: `invert` (encode) and `reconstruct` (decode) of one image, medians of `repeats` after
    `warmup`, in milliseconds."""
    model.eval()
    x, clock = random_batch(1, input_size, device)["x"], Clock(device)
    for _ in range(warmup):
        model.reconstruct(model.invert(x))
    encode, decode = [], []
    for _ in range(repeats):
        t, inv = clock.time(lambda: model.invert(x))
        encode.append(t)
        decode.append(clock.time(lambda inv=inv: model.reconstruct(inv))[0])
    enc, dec = statistics.median(encode) * 1e3, statistics.median(decode) * 1e3
    return {"encode_ms": enc, "decode_ms": dec, "total_ms": enc + dec, "repeats": repeats}


def optimiser_speed(refiner, module, input_size: int, device: str, steps: int) -> dict:
    """Seconds per step of `refiner` on one image from `module`'s codes: after a warm-up call, runs of 1 and of
    `steps` (> 1) steps, the difference per extra step (what each call pays once drops out)."""
    x = random_batch(1, input_size, device)["x"]
    inv, clock = module.invert(x), Clock(device)

    def run(n: int) -> float:
        refiner.options["steps"] = n
        return clock.time(lambda: refiner(inv, x))[0]

    run(1)
    one = run(1)
    return {"step_s": (run(steps) - one) / (steps - 1), "steps": steps, "one_step_call_s": one}
