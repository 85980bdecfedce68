"""`device_check`: the CUDA tests, then every measurement a device can give (training images/s per method and
speed option, peak memory, batch-1 latency, the optimisers' seconds per image), most wanted first, within a time
budget; the report (`ganinv.benchmarks.report`) is rewritten after each step (docs/scaling.md#a-first-gpu)."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import measure, nets, report
from .budget import Budget, OutOfTime

# per size: training batch, timed iterations, warm-up iterations, latency repeats and warm-ups, optimiser steps
SETTINGS = {"full": dict(batch=8, steps=5, warmup=2, repeats=20, latency_warmup=5, optimiser_steps=20),
            "toy": dict(batch=2, steps=2, warmup=1, repeats=3, latency_warmup=1, optimiser_steps=3)}
FIRST_COMPILE_S = {"cuda": 90.0, "cpu": 60.0}  # what one compile is expected to cost until one is measured
TESTS_SHARE = 0.3  # of the budget, at most, for tests/gpu
CHECKOUT_TESTS = Path(__file__).resolve().parents[2] / "tests" / "gpu"


def device_check(out: str | os.PathLike, budget_s: float, size: str = "auto", device: str = "auto",
                 tests: bool = True, methods=nets.METHODS, options=tuple(measure.OPTIONS),
                 optimisers=nets.OPTIMISERS) -> dict:
    """Runs the check into folder `out`; `size`: full (official sizes, random weights) | toy | auto (full on a
    GPU); returns the report (also in `out/gpu-report.json` and `.md`)."""
    budget = Budget(budget_s)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    size = ("full" if device == "cuda" else "toy") if size == "auto" else size
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = {"ganinv_gpu_report": 1, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "status": "running", "budget_s": budget_s, "used_s": 0.0, "size": size,
           "sizes": nets.FULL_SIZE if size == "full" else {"input": 64, "generator": 64},
           "weights": report.WEIGHTS_NOTE if size == "full" else "the toy recipes (narrow encoders), untrained",
           "settings": SETTINGS[size], "device": report.device_info(device), "tests": None,
           "training": [], "latency": [], "optimisers": []}
    if device == "cuda":  # the tests keep exact float32; the benchmark runs as training would
        torch.backends.cudnn.benchmark = True
    save = _saver(rep, budget, out)
    if tests:
        rep["tests"] = run_tests(device, min(budget.left(), TESTS_SHARE * budget_s), out)
        save()
    with nets.random_loss_weights() if size == "full" else contextlib.nullcontext() as weights:
        Measurements(rep, budget, device, size, weights, save).run(methods, options, optimisers)
    failed = [e for part in ("training", "latency", "optimisers") for e in rep[part]
              if e["status"].startswith("failed")]
    ran_out = any(e["status"] != "measured" and not e["status"].startswith("failed")
                  for part in ("training", "latency", "optimisers") for e in rep[part])
    bad_tests = rep["tests"] and rep["tests"]["status"] != "passed"
    rep["status"] = ("failed" if failed or bad_tests else "partial: the budget ran out" if ran_out else "complete")
    save()
    return rep


def check_options(cfg) -> None:
    """Every option of conf/gpu_check.yaml checked before any work: one `OptionError` naming the key and the
    choices."""
    import difflib

    from ganinv.errors import OptionError

    choices = {"size": ("auto", "full", "toy"), "device": ("auto", "cuda", "cpu")}
    for key, allowed in choices.items():
        if cfg[key] not in allowed:
            raise OptionError(f"{key}={cfg[key]} is not one of {', '.join(allowed)}.")
    lists = {"methods": nets.METHODS, "options": tuple(measure.OPTIONS), "optimisers": nets.OPTIMISERS}
    for key, allowed in lists.items():
        for value in cfg[key]:
            if value not in allowed:
                close = difflib.get_close_matches(str(value), allowed, n=1)
                raise OptionError(f"{key}: {value!r} is not one of {', '.join(allowed)}"
                                  + (f"; did you mean {close[0]}?" if close else "."))
    if not float(cfg.budget_s) > 0:
        raise OptionError(f"budget_s={cfg.budget_s}: give the seconds the check may take (e.g. budget_s=420).")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise OptionError("device=cuda but torch sees no CUDA device here: run on a GPU machine, or device=cpu.")


def _saver(rep: dict, budget: Budget, out: Path):
    def save() -> None:
        rep["used_s"] = budget.used()
        report.write(rep, out)

    return save


class Measurements:
    """The benchmark's entries in order of priority: each method's fp32 training and latency, the optimisers,
    then bf16, bf16 + channels_last and compile for each method; an entry runs when its estimate fits."""

    def __init__(self, rep: dict, budget: Budget, device: str, size: str, weights: Path, save):
        self.rep, self.budget, self.device, self.size = rep, budget, device, size
        self.weights, self.save = weights, save
        self.s = SETTINGS[size]
        if size == "full":
            self.generator = nets.full_generator()
        else:
            from ganinv.toy import load_generator

            self.generator = load_generator()  # every toy recipe's generator (conf/generator/toy.yaml)
        self.templates: dict[str, torch.nn.Module] = {}
        self.cost: dict[tuple[str, str, str], float] = {}  # measured seconds per (method, option)
        self.stopped = False

    def template(self, method: str):
        """The method built once (HyperStyle and HFGI on a copy of the e4e template: they freeze their base)."""
        if method not in self.templates:
            base = nets.copy_to(self.template("e4e"), "cpu") if method in nets.ON_BASE else None
            self.templates[method] = nets.build_method(method, self.size, self.generator, self.weights, base=base)
        return self.templates[method]

    def run(self, methods, options, optimisers) -> None:
        for method in methods:
            if "fp32" in options:
                self.entry("training", method, "fp32", lambda m=method: self.training(m, "fp32"))
            self.entry("latency", method, "fp32", lambda m=method: self.latency(m))
        for name in optimisers:
            self.entry("optimisers", name, "fp32", lambda n=name: self.optimiser(n))
        for option in (o for o in options if o != "fp32"):
            for method in methods:
                self.entry("training", method, option, lambda m=method, o=option: self.training(m, o))

    def estimate(self, part: str, method: str, option: str) -> float:
        """Seconds an entry should take: as the same method's fp32 entry did, plus a compile as long as the last
        one (the compiler's cache makes later ones shorter); 0 when nothing like it has run yet."""
        done = self.cost.get((part, method, "fp32"), 0.0)
        if option == "compile":
            compiled = [v for (p, _, o), v in self.cost.items() if p == part and o == "compile"]
            done += compiled[-1] if compiled else FIRST_COMPILE_S[self.device]
        return done

    def entry(self, part: str, method: str, option: str, work) -> None:
        name = nets.NAMES.get(method, method) if part != "optimisers" else method
        row = {"method": method, "name": name, "option": option}
        self.rep[part].append(row)
        need = self.estimate(part, method, option)
        if self.stopped or not self.budget.fits(need):
            row["status"] = f"skipped: the budget ({need:.0f} s needed, {max(self.budget.left(), 0):.0f} s left)"
            return self.save()
        began = time.monotonic()
        try:
            with self.budget.guard():
                row.update(work())
            row["status"] = "measured"
        except OutOfTime:
            row["status"] = "stopped at the budget"
            self.stopped = True
        except Exception as e:  # noqa: BLE001 - one failure is reported; the others still run
            row["status"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        finally:
            self.cost[(part, method, option)] = time.monotonic() - began
            _free(self.device)
        print(f"ganinv-gpu-check: {part} {name} {option}: {row['status']} "
              f"({time.monotonic() - began:.1f} s; {self.budget.used():.0f} s used)", flush=True)
        self.save()

    def training(self, method: str, option: str) -> dict:
        model = nets.copy_to(self.template(method), self.device)
        if option == "compile":
            torch._dynamo.reset()  # each method pays its own compile (the first iteration's seconds)
        model.use_speed(**measure.OPTIONS[option])
        batch = measure.random_batch(self.s["batch"], model.input_size, self.device)
        return measure.training_speed(model, batch, self.device, self.s["steps"], self.s["warmup"],
                                      flops=option == "fp32")

    def latency(self, method: str) -> dict:
        model = nets.copy_to(self.template(method), self.device)
        return measure.latency(model, model.input_size, self.device, self.s["repeats"], self.s["latency_warmup"])

    def optimiser(self, name: str) -> dict:
        from ganinv.refine import build_refiner

        module = nets.copy_to(self.template("idinvert" if name == "idinvert" else "e4e"), self.device).eval()
        node, loss, default = nets.refiner_node(name, self.size)
        refiner = build_refiner(node, module, _perceptual(loss)).to(self.device)
        speed = measure.optimiser_speed(refiner, module, module.input_size, self.device, self.s["optimiser_steps"])
        return {**speed, "default_steps": default, "seconds_per_image": speed["step_s"] * default,
                "from": "e4e codes" if name != "idinvert" else "In-Domain encoder codes"}


def _perceptual(loss):
    from ganinv.methods import build_loss_nets

    return build_loss_nets(loss).get("perceptual")


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def run_tests(device: str, timeout: float, out: Path) -> dict:
    """tests/gpu of the checkout in a pytest process on `device` (GANINV_TEST_DEVICE; on a CPU they show that the
    tests run, not CUDA's numerics): counts, seconds and each test's outcome."""
    if not CHECKOUT_TESTS.is_dir():
        return {"status": "not run: tests/gpu is not here (run the check from a ganinv checkout)"}
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-p", "no:xdist",
                   f"--junitxml={junit}", str(CHECKOUT_TESTS)]
        env = {**os.environ, "GANINV_TEST_DEVICE": device}
        began = time.monotonic()
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=max(timeout, 1), env=env,
                                 cwd=CHECKOUT_TESTS.parents[1])
        except subprocess.TimeoutExpired:
            return {"status": f"timed out after {timeout:.0f} s", "seconds": time.monotonic() - began}
        (out / "gpu-tests.log").write_text(run.stdout + run.stderr)
        result = _junit(junit) if junit.exists() else {"cases": []}
    result["seconds"] = time.monotonic() - began
    result["device"] = device
    result["status"] = "passed" if run.returncode == 0 else f"failed (pytest exit code {run.returncode})"
    return result


def _junit(path: Path) -> dict:
    cases, counts = [], {"passed": 0, "failed": 0, "skipped": 0}
    for case in ET.parse(path).getroot().iter("testcase"):
        problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        outcome = {"failure": "failed", "error": "failed", "skipped": "skipped"}.get(
            problem.tag if problem is not None else "", "passed")
        counts[outcome] += 1
        row = {"name": case.get("name"), "outcome": outcome, "seconds": float(case.get("time") or 0)}
        if problem is not None:
            row["message"] = (problem.get("message") or "").splitlines()[0][:300] if problem.get("message") else ""
        cases.append(row)
    return {**counts, "cases": cases}
