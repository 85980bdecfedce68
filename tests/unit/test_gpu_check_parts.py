"""`ganinv-gpu-check`'s parts that need no measurement: the budget interrupts what overruns it, options are
checked before any work (the whole check at toy size: tests/slow/test_gpu_check.py)."""

from __future__ import annotations

import time

import pytest
from omegaconf import OmegaConf

from ganinv.benchmarks import check_options
from ganinv.benchmarks.budget import Budget, OutOfTime
from ganinv.configs import compose_config
from ganinv.errors import OptionError


def test_the_budget_interrupts_work_that_overruns_it():
    budget = Budget(1.0, reserve=0.5)
    began = time.monotonic()
    with pytest.raises(OutOfTime), budget.guard():
        while True:
            time.sleep(0.01)
    assert 0.4 < time.monotonic() - began < 1.0 and not budget.fits(0.01)
    with pytest.raises(OutOfTime), budget.guard():  # nothing left: refused at once
        pass


@pytest.mark.parametrize("override, message", [
    ("methods=[psp,e4ee]", "methods: 'e4ee' is not one of psp, psp_w, e4e, .*did you mean e4e"),
    ("options=[fp32,bf61]", "options: 'bf61' is not one of fp32, bf16, .*did you mean bf16"),
    ("optimisers=[pit]", "optimisers: 'pit' is not one of .*did you mean pti"),
    ("size=huge", "size=huge is not one of auto, full, toy"),
    ("budget_s=0", "budget_s=0: give the seconds"),
])
def test_bad_options_are_named_before_any_work(override, message):
    cfg = compose_config("gpu_check", ["out=x", override])
    with pytest.raises(OptionError, match=message):
        check_options(cfg)
    check_options(OmegaConf.merge(cfg, compose_config("gpu_check", ["out=x"])))  # the defaults pass
