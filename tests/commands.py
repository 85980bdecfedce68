"""Running ganinv's commands from tests: composed configs, subprocesses, `main()` in this process, and the
one-line error every command gives for a user's mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from ganinv.configs import CONF


def composed(name: str, *overrides: str):
    with initialize_config_dir(CONF, version_base=None):
        return compose(name, overrides=list(overrides))


def command(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"ganinv.commands.{name}", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def in_process(name: str, *args: str, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """`ganinv-<name> args` run by its `main()` in this process (no interpreter start-up), as a finished process."""
    import importlib

    return run_main(importlib.import_module(f"ganinv.commands.{name}").main, [f"ganinv.commands.{name}", *args],
                    monkeypatch, capsys)


def run_main(main, argv: list[str], monkeypatch, capsys) -> subprocess.CompletedProcess:
    """`main()` with `sys.argv = argv`, in this process, as a finished process (exit status, captured output)."""
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    try:
        code = main() or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:  # what a process would take with it: Hydra's global state, which later code reads
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.hydra_config import HydraConfig

        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def one_line_error(run: subprocess.CompletedProcess, prog: str, *expected: str) -> None:
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.startswith(f"{prog}: error: ") and all(e in run.stderr for e in expected), run.stderr[-3000:]
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr[-3000:]
