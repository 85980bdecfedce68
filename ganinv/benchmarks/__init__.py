"""Measurements of ganinv on a device: `device_check` (`ganinv-gpu-check`, `make gpu-check`) runs the CUDA tests
and the benchmark within a time budget and writes `gpu-report.json` / `.md` (docs/scaling.md#a-first-gpu)."""

from .device_check import check_options, device_check

__all__ = ["check_options", "device_check"]
