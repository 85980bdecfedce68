"""DDP on CPU processes (gloo), per method, at the same global batch: training images/s on 1 process (2 threads)
and on 2 processes (1 thread each), the gradient all-reduce's share of an iteration, the cost of searching for
unused parameters (pSp), and how far 2 processes x B/2 land from 1 process x B in float32 after 3 iterations of
narrow networks, with sync_batchnorm on and off (the parity tests compare in float64). The toy recipes' networks
are timed. `python experiments/benchmarks/ddp.py [--steps N]`; writes
experiments/benchmarks/ddp.json and prints a Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.runs import EXPERIMENTS, max_difference, train  # noqa: E402

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\].* iteration (\d+)/")
SYNCED_BACKWARDS = {"toy_psp": 1, "toy_psp_w": 1, "toy_e4e": 2, "toy_restyle_psp": 1, "toy_restyle_e4e": 2,
                    "toy_idinvert": 2}  # all-reduces of gradients per iteration (e4e: + D; R1 every few)


def seconds_per_iteration(run_dir: Path, skip: int = 2) -> float:
    """From the run's log: the median time between consecutive iterations after the first `skip`."""
    times = {}
    for line in (run_dir / "train.log").read_text().splitlines():
        m = STAMP.match(line)
        if m:
            times.setdefault(int(m[2]), datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    steps = sorted(k for k in times if k > skip)
    gaps = sorted(times[b] - times[a] for a, b in zip(steps, steps[1:]))
    return gaps[len(gaps) // 2]


def _all_reduce_worker(rank: int, numel: int, port: int, out) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    grad = torch.randn(numel)
    times = []
    for _ in range(12):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(grad)
        times.append(time.perf_counter() - start)
    if rank == 0:
        out.put(sorted(times[2:])[len(times[2:]) // 2])
    dist.destroy_process_group()


def all_reduce_seconds(numel: int) -> float:
    """The median time of one gloo all-reduce of `numel` float32 gradients between 2 CPU processes."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    mp.spawn(_all_reduce_worker, args=(numel, 29000 + os.getpid() % 1000, out), nprocs=2)
    return out.get()


def trained_parameters(state: dict) -> int:
    return sum(v.numel() for k, v in state.items() if k.startswith(("encoder.", "discriminator.",
                                                                    "regularisers.discriminator."))
               and torch.is_tensor(v) and torch.is_floating_point(v) and "running" not in k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    timing = ("callbacks.log_every=1", "data.toy.n_train=256")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for exp in EXPERIMENTS:
            row = {"method": exp}
            one = train(tmp / f"{exp}-1", exp, 1, args.steps, args.batch, (*timing, "threads=2"), small=False)
            train(tmp / f"{exp}-2", exp, 2, args.steps, args.batch, timing, small=False)
            s1, s2 = (seconds_per_iteration(tmp / f"{exp}-{n}") for n in (1, 2))
            row |= {"images_per_s_1": args.batch / s1, "images_per_s_2": args.batch / s2}
            reduce = all_reduce_seconds(trained_parameters(one)) * SYNCED_BACKWARDS[exp]
            row |= {"trained_parameters": trained_parameters(one), "all_reduce_share": reduce / s2}
            # float32: 3 iterations of a batch of 8, as the parity tests (which run in float64)
            base = train(tmp / f"{exp}-p1", exp, 1)
            for sync in ("true", "false"):
                two = train(tmp / f"{exp}-p2{sync}", exp, 2, extra=(f"trainer.sync_batchnorm={sync}",))
                row[f"float32_diff_sync_bn_{sync}"] = max_difference(base, two)
            if exp == "toy_psp":
                train(tmp / "search", exp, 2, args.steps, args.batch,
                      (*timing, "trainer.strategy=ddp_find_unused_parameters_true"), small=False)
                row["images_per_s_2_unused_search"] = args.batch / seconds_per_iteration(tmp / "search")
            rows.append(row)
            print(json.dumps(row), flush=True)
    (Path(__file__).parent / "ddp.json").write_text(json.dumps(rows, indent=1))
    print("\n| method | img/s, 1 process | img/s, 2 processes | all-reduce share | float32 Δ, sync BN on | off |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['images_per_s_1']:.1f} | {r['images_per_s_2']:.1f} | "
              f"{r['all_reduce_share']:.1%} | {r['float32_diff_sync_bn_true']:.1e} | "
              f"{r['float32_diff_sync_bn_false']:.1e} |")


if __name__ == "__main__":
    main()
