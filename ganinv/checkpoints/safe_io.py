"""Safe reading and atomic writing of checkpoint files."""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file, the problem and the fix."""

    def __init__(self, path: str | os.PathLike | None, problem: str, fix: str | None = None):
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}{problem}" + (f" {fix}" if fix else ""))
        self.path = None if path is None else str(path)


def check_file(path: str | os.PathLike, missing: tuple[str, str] | None = None) -> Path:
    """Return `path` as a Path, or raise CheckpointError if it is missing, a folder or empty.

    `missing` is the (problem, fix) to report for an absent file, e.g. where a released weights file comes from.
    """
    p = Path(path).expanduser()
    if not p.exists():
        problem, fix = missing or ("no such file.", "Check the path (relative paths start at the working directory).")
        raise CheckpointError(p, problem, fix)
    if p.is_dir():
        raise CheckpointError(p, "is a folder, not a checkpoint file.", "Pass the .pt / .pkl file inside it.")
    if p.stat().st_size == 0:
        raise CheckpointError(p, "is empty (0 bytes).", "Copy or download the file again.")
    return p


def load_torch_file(path: str | os.PathLike, missing: tuple[str, str] | None = None) -> Any:
    """`torch.load(path, weights_only=True)` on CPU with errors that name the file and the fix (see `check_file`)."""
    p = check_file(path, missing)
    try:
        # rosinality's train.py snapshots hold their options as an argparse.Namespace: plain data, safe to rebuild.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            p,
            f"holds Python objects that a weights-only load refuses ({_first_line(e)}).",
            "If it is an official training snapshot, re-save its state dicts with `ganinv-convert` "
            "on a machine where you trust the file; ganinv never runs code from a pickle.",
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            p,
            f"is not a readable PyTorch file; it looks truncated or corrupt ({_first_line(e)}).",
            "Copy or download it again and compare its size / checksum with the source.",
        ) from None


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
