"""The plan of `make gpu-check` on a GPU, from what one full-size iteration costs: each method's FLOPs per training
image, per batch-1 inversion and per optimiser step, counted here on the CPU (random weights, 256-px inputs, a
1024-px generator: `ganinv.benchmarks.nets`), and the seconds each measurement of the check would take at an assumed
sustained rate. Writes gpu_plan.json beside this file.

    python experiments/benchmarks/gpu_plan.py [--tflops 25] [--compile-s 90] [--methods psp e4e ...]

(--methods: count those again, keeping the other methods' counts of the last run.)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganinv.benchmarks import measure, nets
from ganinv.benchmarks.device_check import SETTINGS
from ganinv.refine import build_refiner


def method_flops(model) -> tuple[float, int]:
    """FLOPs of one training image (a batch of 2: In-Domain's encoder has batch norm) and of one batch-1 inversion
    (invert + reconstruct)."""
    batch = measure.random_batch(2, model.input_size, "cpu")
    step = measure.train_steps(model)
    train = measure.count_flops(lambda: step(batch)) / 2
    batch = {k: v[:1] for k, v in batch.items()}
    model.eval()
    with torch.no_grad():
        infer = measure.count_flops(lambda: model.reconstruct(model.invert(batch["x"])))
    return train, infer


def optimiser_flops(name: str, module) -> tuple[int, int]:
    """FLOPs of one step of the refiner `name` on one image, and its default number of steps."""
    from ganinv.methods import build_loss_nets

    node, loss, default = nets.refiner_node(name, "full")
    refiner = build_refiner(node, module.eval(), build_loss_nets(loss).get("perceptual"))
    x = measure.random_batch(1, module.input_size, "cpu")["x"]
    inv = module.invert(x)
    refiner.options["steps"] = 1
    return measure.count_flops(lambda: refiner(inv, x)), default


def table(plan: dict) -> str:
    """The plan as docs/scaling.md shows it."""
    m, o, ps = plan["methods"], plan["optimisers"], plan["planned_s"]
    per = ", ".join(f"{k} {v['gflop_per_training_image']:.0f}" for k, v in m.items())
    inv = ", ".join(f"{k} {v['gflop_per_inversion']:.0f}" for k, v in m.items())
    opt = ", ".join(f"{k} {v['gflop_per_step']:.0f}" for k, v in o.items())
    n = len(m)
    return "\n".join([
        "| part | GFLOP (counted here) | compute at 25 TFLOP/s | with its overheads (estimated) |", "|---|---|---|---|",
        "| tests/gpu (at most 30 % of the budget) | toy sizes | — | about 60 s (68 s on this 2-core CPU) |",
        f"| building the {n} random-weight methods (CPU) | — | — | about {5 * n} s |",
        f"| training, float32: {n} methods × 8 iterations of 8 images (2 warm-up, 1 counted, 5 timed) | per image: "
        f"{per} | {ps['fp32']:.0f} s | about {ps['fp32'] + 3 * n:.0f} s |",
        f"| latency: {n} methods × 25 inversions at batch 1 | per inversion: {inv} | {ps['latency']:.0f} s | about "
        f"{ps['latency'] + n:.0f} s |",
        f"| optimisers: {len(o)} × 23 steps on one image | per step: {opt} | {ps['optimisers']:.0f} s | about "
        f"{ps['optimisers'] + 2 * len(o):.0f} s |",
        f"| training, bf16 and bf16 + channels_last | as float32 | {ps['bf16']:.0f} s each | about "
        f"{ps['bf16'] + 3 * n:.0f} s each |",
        f"| training, compile | as float32, plus each compile | {ps['fp32']:.0f} s + compiles | about 90 s for the "
        f"first method, then about 25 s each (the compiler's cache holds the shared IR-SE blocks): about "
        f"{ps['fp32'] + 3 * n + 90 + 25 * (n - 1):.0f} s |"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflops", type=float, default=25.0, help="assumed sustained TFLOP/s in float32 (TF32 off)")
    parser.add_argument("--compile-s", type=float, default=90.0, help="assumed seconds of one method's compile")
    parser.add_argument("--methods", nargs="+", default=list(nets.METHODS), choices=nets.METHODS)
    args = parser.parse_args()
    s, rate, file = SETTINGS["full"], args.tflops * 1e12, Path(__file__).with_name("gpu_plan.json")
    last = json.loads(file.read_text())["methods"] if file.exists() else {}
    out: dict = {"assumed_tflop_per_s": args.tflops, "assumed_compile_s": args.compile_s, "settings": s,
                 "methods": {k: v for k, v in last.items() if k not in args.methods}, "optimisers": {}}
    generator = nets.full_generator()
    with nets.random_loss_weights() as weights:
        modules = {}
        for name in args.methods:
            began = time.perf_counter()
            modules[name] = nets.build_method(name, "full", generator, weights)
            train, infer = method_flops(modules[name])
            out["methods"][name] = {"gflop_per_training_image": train / 1e9, "gflop_per_inversion": infer / 1e9,
                                    "planned_s_training": (s["warmup"] + 1 + s["steps"]) * s["batch"] * train / rate,
                                    "planned_s_latency": (s["latency_warmup"] + s["repeats"]) * infer / rate,
                                    "cpu_s_to_count": time.perf_counter() - began}
            print(name, json.dumps(out["methods"][name]), flush=True)
        for name in nets.OPTIMISERS:
            base = "idinvert" if name == "idinvert" else "e4e"
            modules[base] = modules.get(base) or nets.build_method(base, "full", generator, weights)
            flops, default = optimiser_flops(name, modules[base])
            out["optimisers"][name] = {"gflop_per_step": flops / 1e9, "default_steps": default,
                                       "planned_s": (3 + s["optimiser_steps"]) * flops / rate}
            print(name, json.dumps(out["optimisers"][name]), flush=True)
    m = out["methods"]
    train = sum(v["planned_s_training"] for v in m.values())
    out["planned_s"] = {"fp32": train, "latency": sum(v["planned_s_latency"] for v in m.values()),
                        "optimisers": sum(v["planned_s"] for v in out["optimisers"].values()),
                        "bf16": train, "bf16+channels_last": train,
                        "compile": train + len(m) * args.compile_s}
    out["planned_s"]["total"] = sum(out["planned_s"].values())
    out["methods"] = {k: out["methods"][k] for k in nets.METHODS if k in out["methods"]}
    file.write_text(json.dumps(out, indent=1))
    print(table(out))


if __name__ == "__main__":
    main()
