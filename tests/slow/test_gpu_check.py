"""`make gpu-check` on the CPU at toy size: the CUDA tests, then every measurement, within the budget, into the two
reports; and a budget too short for everything leaves a partial report of what was measured."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ganinv.benchmarks import device_check
from ganinv.benchmarks.nets import METHODS, NAMES, OPTIMISERS

ROOT = Path(__file__).resolve().parents[2]


# The benchmark's methods here: HFGI (on e4e) and In-Domain, whose compiles are short on a CPU (3 s and 45 s cold;
# an IR-SE encoder's first compile takes 100 s, which the complete suite cannot spare). Every method's own path
# (building it, a training iteration, inversion, bf16) still runs in the check's tests/gpu, on the CPU.
METHODS_HERE = ["hfgi", "idinvert"]


@pytest.mark.slow
def test_make_gpu_check_runs_end_to_end_on_the_cpu_at_toy_size(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the CPU path, even on a machine with a GPU
    run = subprocess.run(["make", "gpu-check", f"OUT={tmp_path}", "budget_s=420",
                          f"GPU_CHECK=methods=[{','.join(METHODS_HERE)}]"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rep = json.loads((tmp_path / "gpu-report.json").read_text())
    assert rep["size"] == "toy" and rep["device"]["type"] == "cpu" and rep["used_s"] < 420
    assert rep["status"] in ("complete", "partial: the budget ran out")
    tests = rep["tests"]
    assert tests["status"] == "passed" and tests["failed"] == 0 and tests["passed"] >= 3 * len(METHODS)
    # the most wanted figures come first, so they are all there: fp32 training and latency, the optimisers
    fp32 = {e["method"]: e for e in rep["training"] if e["option"] == "fp32"}
    assert list(fp32) == METHODS_HERE
    assert all(e["status"] == "measured" and e["images_per_s"] > 0 and e["peak_gib"] > 0 for e in fp32.values())
    assert all(e["status"] == "measured" and 0 < e["encode_ms"] < e["total_ms"] for e in rep["latency"])
    assert [e["method"] for e in rep["optimisers"]] == list(OPTIMISERS)
    assert all(e["status"] == "measured" and e["seconds_per_image"] > e["step_s"] > 0 for e in rep["optimisers"])
    # every speed option of every method is measured, or listed with what stopped it
    for e in rep["training"]:
        assert e["status"] == "measured" or e["status"].startswith(("skipped: the budget", "stopped at")), e
    assert {e["option"] for e in rep["training"]} == {"fp32", "bf16", "bf16+channels_last", "compile"}
    md = (tmp_path / "gpu-report.md").read_text()
    assert all(NAMES[m] in md for m in METHODS_HERE) and "## Batch-1 latency" in md and "## Optimisers" in md


@pytest.mark.slow
def test_a_short_budget_leaves_a_partial_report(tmp_path):
    rep = device_check(tmp_path, 25, size="toy", device="cpu", tests=False, methods=["psp", "e4e"],
                       options=["fp32", "compile"], optimisers=[])
    assert rep["status"] == "partial: the budget ran out" and rep["used_s"] < 25
    assert [e["status"] for e in rep["training"] if e["option"] == "fp32"] == ["measured", "measured"]
    late = [e["status"] for e in rep["training"] if e["option"] == "compile"]
    assert all(s.startswith(("skipped: the budget", "stopped at the budget")) for s in late), late
    assert json.loads((tmp_path / "gpu-report.json").read_text())["status"] == rep["status"]
