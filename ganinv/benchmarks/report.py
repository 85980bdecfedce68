"""A device check's report: `gpu-report.json` (every figure, with its status) and `gpu-report.md` (the same as
tables), rewritten after each measurement so that whatever stops the check leaves what it measured."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import torch

from ganinv.checkpoints.safe_io import atomic_write

# GAN Inverter's published batch-1 inference latency on one RTX 3090 (ms), for comparison
PUBLISHED_LATENCY_MS = {"psp": 41, "e4e": 42, "restyle_e4e": 150, "hfgi": 67, "hyperstyle": 162}
WEIGHTS_NOTE = ("random weights in the official architectures (nothing can be downloaded): speeds and memory are "
                "the real networks', the images are noise")


def device_info(device: str) -> dict:
    """The device, its driver, and the torch / CUDA / cuDNN versions."""
    info = {"type": device, "torch": torch.__version__, "python": platform.python_version(),
            "cpu": _cpu_name(), "cpu_threads": torch.get_num_threads()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                 "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                 "cudnn": torch.backends.cudnn.version(), "driver": _driver(), "count": torch.cuda.device_count()}
    else:
        info["name"] = info["cpu"]
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def write(report: dict, out: Path) -> None:
    """`gpu-report.json` and `gpu-report.md` in `out`, each replaced atomically."""
    atomic_write(out / "gpu-report.json", lambda f: f.write(json.dumps(report, indent=1).encode()))
    atomic_write(out / "gpu-report.md", lambda f: f.write(markdown(report).encode()))


def _fmt(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown(r: dict) -> str:
    d = r["device"]
    versions = ", ".join(f"{k} {d[k]}" for k in ("driver", "cuda", "cudnn", "torch", "python") if d.get(k))
    lines = [f"# ganinv device check: {d['name']}", "",
             f"{r['status']}; {r['used_s']:.0f} s of a {r['budget_s']:.0f} s budget; {versions}; "
             f"{d.get('memory_gib', '')}{' GiB' if d.get('memory_gib') else ''}", "",
             f"Size: {r['size']} ({r['sizes']}); {r['weights']}.", ""]
    t = r.get("tests")
    if t:
        lines += ["## CUDA tests (tests/gpu)", "", f"{t['status']}: {t.get('passed', 0)} passed, "
                  f"{t.get('failed', 0)} failed, {t.get('skipped', 0)} skipped in {t.get('seconds', 0):.0f} s", ""]
        lines += [f"- {c['name']}: {c['outcome']} {c.get('message', '')}".rstrip()
                  for c in t.get("cases", []) if c["outcome"] != "passed"]
        lines.append("")
    rows = r["training"]
    if rows:
        lines += ["## Training", "", "| method | option | batch | images/s | vs fp32 | first iteration (s) | "
                  "peak memory (GiB) | TFLOP/s | status |", "|---|---|---|---|---|---|---|---|---|"]
        fp32 = {e["method"]: e.get("images_per_s") for e in rows if e["option"] == "fp32"}
        for e in rows:
            base, ips = fp32.get(e["method"]), e.get("images_per_s")
            gain = f"{100 * (ips / base - 1):+.0f} %" if ips and base and e["option"] != "fp32" else ""
            lines.append(f"| {e['name']} | {e['option']} | {e.get('batch', '')} | {_fmt(ips, 2)} | {gain} | "
                         f"{_fmt(e.get('first_step_s'), 2)} | {_fmt(e.get('peak_gib'), 2)} | "
                         f"{_fmt(e.get('tflop_per_s'), 2)} | {e['status']} |")
        lines.append("")
    if r["latency"]:
        lines += ["## Batch-1 latency (invert + reconstruct, median)", "",
                  "| method | encode (ms) | decode (ms) | total (ms) | GAN Inverter, RTX 3090 (ms) | status |",
                  "|---|---|---|---|---|---|"]
        for e in r["latency"]:
            lines.append(f"| {e['name']} | {_fmt(e.get('encode_ms'))} | {_fmt(e.get('decode_ms'))} | "
                         f"{_fmt(e.get('total_ms'))} | {PUBLISHED_LATENCY_MS.get(e['method'], '')} | {e['status']} |")
        lines.append("")
    if r["optimisers"]:
        lines += ["## Optimisers (one image)", "", "| refiner | s / step | default steps | s / image | status |",
                  "|---|---|---|---|---|"]
        for e in r["optimisers"]:
            lines.append(f"| {e['name']} | {_fmt(e.get('step_s'), 4)} | {e.get('default_steps', '')} | "
                         f"{_fmt(e.get('seconds_per_image'), 2)} | {e['status']} |")
        lines.append("")
    return "\n".join(lines)
