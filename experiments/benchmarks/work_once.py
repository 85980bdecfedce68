"""Work that should be done once: `load_method`, ReStyle's average image, In-Domain's regularised optimisation and
the generator hash of an evaluation. Times on the toy domain (64 px) and, for loading, a 1024-px config-f
generator; run it on two versions of ganinv to compare (PYTHONPATH=<checkout> python work_once.py).

    python experiments/benchmarks/work_once.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
import types
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from ganinv.checkpoints import safe_io
from ganinv.configs import CONF
from ganinv.methods import load_method, method_from_config
from ganinv.refine import DomainRegularisedOptimiser
from ganinv.stylegan2 import Generator
from ganinv.toy import load_generator


def seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def module(experiment: str, generator, **extra):
    with initialize_config_dir(CONF, version_base=None):
        cfg = compose("train", overrides=[f"experiment={experiment}", *[f"{k}={v}" for k, v in extra.items()]])
    return method_from_config(cfg.method, generator, cfg.loss, input_nc=3, input_size=64).eval()


def run_checkpoint(m, folder: Path) -> Path:
    path = folder / f"{type(m).__name__}_{m.generator.size}.ckpt"
    torch.save({"ganinv": {"method": type(m).__name__}, "hyper_parameters": dict(m.hparams),
                "state_dict": m.state_dict()}, path)
    return path


def evaluation_setup(path: Path) -> tuple[str, float]:
    """What ganinv-eval does with a checkpoint's generator before evaluating: load it, pick the suite (is it the
    toy generator?), hash it for the record; how many times the generator was hashed, and the seconds."""
    from ganinv.metrics.suite import is_toy_generator

    calls, real = [], safe_io.hashlib  # counted in safe_io alone (Hydra hashes its own policy)
    safe_io.hashlib = types.SimpleNamespace(sha256=lambda *a: calls.append(1) or hashlib.sha256(*a))
    start = time.perf_counter()
    m = load_method(path)
    is_toy_generator(m.generator), safe_io.state_hash(m.generator)
    seconds_ = time.perf_counter() - start
    safe_io.hashlib = real
    return f"evaluation set-up, {m.generator.size}-px generator: generator hashed {len(calls)} times", seconds_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    toy = load_generator()
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        big = Generator(1024, 512, 8).eval().requires_grad_(False)
        big.latent_avg = big.mean_latent(1000)[0]
        for g in (toy, big):
            path = run_checkpoint(module("toy_psp", g), Path(tmp))
            rows.append((f"load_method, pSp run, {g.size}-px generator", seconds(lambda p=path: load_method(p),
                                                                                args.repeats)))
        rows.append(evaluation_setup(path))
    restyle = module("toy_restyle_psp", toy)
    rows.append(("ReStyle-pSp invert, 8 images, 5 steps", seconds(lambda: restyle.invert(x), args.repeats)))
    idinvert = module("toy_idinvert", toy)
    refine = DomainRegularisedOptimiser(idinvert, steps=20)
    rows.append(("In-Domain regularised optimisation, 4 images, 20 steps",
                 seconds(lambda: refine(idinvert.invert(x[:4]), x[:4]), max(1, args.repeats // 2))))
    for name, s in rows:
        print(f"| {name} | {s:.3f} s |")


if __name__ == "__main__":
    main()
