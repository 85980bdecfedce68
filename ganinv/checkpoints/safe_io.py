"""Safe reading and atomic writing of checkpoint files: the ground floor every layer may use.

Files are recognised by their content, never by their suffix: a PyTorch zip archive, a legacy PyTorch file, a
plain pickle (e.g. an NVIDIA network pickle), or something else that is named in one sentence.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
import tempfile
import warnings
import weakref
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ganinv.errors import CheckpointError

NEVER_RUNS = ("ganinv reads tensors, numbers, strings and plain containers only and never runs code from a file; "
              "if you trust it, re-save just its tensors (torch.save of the state dicts) and pass that file.")
# A legacy (pre-zip) torch.save file starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_TORCH = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_IMAGES = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"BM": "a BMP image"}


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


def file_kind(path: str | os.PathLike) -> str:
    """'torch' (zip archive or legacy torch.save) or 'pickle'; anything else is a CheckpointError saying what it is."""
    p = check_file(path)
    with open(p, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if not zipfile.is_zipfile(p):
            raise CheckpointError(p, "is a truncated or damaged zip archive (PyTorch files are zip archives).",
                                  "Copy or download it again and compare its size / checksum with the source.")
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise CheckpointError(p, f"is a damaged zip archive ({first_line(e)}).",
                                  "Copy or download it again.") from None
        if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "") if names else "nothing"
            raise CheckpointError(p, f"is a zip archive but not a PyTorch file (it holds {shown}).",
                                  "Pass the .pt / .pkl checkpoint itself.")
        return "torch"
    if head.startswith(_LEGACY_TORCH):
        return "torch"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode: a pickle of protocol 2 to 5
        return "pickle"
    for magic, what in _IMAGES.items():
        if head.startswith(magic):
            raise CheckpointError(p, f"is {what}, not a checkpoint.", "Pass the .pt / .pkl checkpoint file.")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        raise CheckpointError(p, "is a WebP image, not a checkpoint.", "Pass the .pt / .pkl checkpoint file.")
    if _is_text(head):
        start = head[:40].decode("utf-8", "replace").splitlines()[0] if head.strip() else ""
        raise CheckpointError(p, f"is a text file (it starts with {start!r}), not a checkpoint.",
                              "Pass the .pt / .pkl checkpoint file; a download that failed can leave an HTML or "
                              "error page behind.")
    raise CheckpointError(p, "is not a PyTorch, pickle or zip file (its bytes match no checkpoint format).",
                          "Copy or download it again; check it is the checkpoint and not another file.")


def load_torch_file(path: str | os.PathLike, missing: tuple[str, str] | None = None) -> Any:
    """`torch.load(path, weights_only=True)` on CPU; every unreadable file is one CheckpointError naming it."""
    p = check_file(path, missing)
    return _torch_load(p, plain_pickle=file_kind(p) == "pickle")


def _torch_load(p: Path, plain_pickle: bool) -> Any:
    try:
        # rosinality's train.py snapshots hold their options as an argparse.Namespace: plain data, safe to rebuild.
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected pickle protocol")  # plain pickles get our own message
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        glob = refused_global(e)
        if glob is not None and glob.startswith("torch_utils.persistence"):
            raise CheckpointError(p, "is an NVIDIA network pickle, not a torch.save file.",
                                  "Load it with ganinv.checkpoints.load_generator or convert it with ganinv-convert.") \
                from None
        if glob is not None:
            raise CheckpointError(p, f"holds Python objects: the weights-only load refused the global '{glob}'.",
                                  NEVER_RUNS) from None
        if plain_pickle:
            raise CheckpointError(p, f"is a pickle that is not a PyTorch checkpoint ({first_line(e)}).",
                                  NEVER_RUNS) from None
        raise CheckpointError(p, "is truncated or corrupt (its pickle data cannot be read).",
                              "Copy or download it again and compare its size / checksum with the source.") from None
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, EOFError, KeyError ... for damaged files
        raise CheckpointError(p, f"is truncated or corrupt ({type(e).__name__}: {first_line(e)}).",
                              "Copy or download it again and compare its size / checksum with the source.") from None


def state_mismatch(own: dict, theirs: dict, prefix: str = "") -> str | None:
    """What keeps `theirs` from loading strictly into a module whose state dict is `own`: the missing and
    unexpected keys and the shape mismatches (keys spelt with `prefix`, as in the file), or None if it fits."""
    missing = [prefix + k for k in own if k not in theirs]
    unexpected = [prefix + k for k in theirs if k not in own]
    shapes = [f"{prefix}{k}: file {tuple(theirs[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in theirs and tuple(theirs[k].shape) != tuple(own[k].shape)]
    parts = [f"{label} ({len(items)}): {items[:5]}{' ...' if len(items) > 5 else ''}"
             for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                  ("shape mismatches", shapes)) if items]
    return "; ".join(parts) or None


def refused_global(e: BaseException) -> str | None:
    """The global that torch's weights-only unpickler refused, from its message."""
    m = re.search(r"GLOBAL ([\w.]+)", str(e)) or re.search(r"Unsupported global: ([\w.]+)", str(e))
    return m[1] if m else None


def _is_text(head: bytes) -> bool:
    for cut in (len(head), len(head) - 1, len(head) - 2, len(head) - 3):  # a multi-byte character cut at the end
        try:
            text = head[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and all(c.isprintable() or c in "\r\n\t\f" for c in text)
    return False


_HASHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict (names, shapes, dtypes and bytes): e.g. the identity of a generator.
    Computed once per module while no tensor of its state is replaced or changed in place."""
    state = module.state_dict()
    key = tuple((k, v.data_ptr(), v._version, v.device) for k, v in state.items())
    cached = _HASHES.get(module)
    if cached is not None and cached[0] == key:
        return cached[1]
    h = hashlib.sha256()
    for k, v in state.items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    _HASHES[module] = key, h.hexdigest()
    return _HASHES[module][1]


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """`write(f)` into a temporary file beside `path`, then rename: a crash never leaves half a file.

    The result gets the permissions the user's umask gives a new file (not the temporary file's 0600)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save(obj)` through `atomic_write`."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def first_line(e: BaseException) -> str:
    """The first line of an error message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
