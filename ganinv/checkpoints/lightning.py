"""Lightning training checkpoints (`last.ckpt`): checked against the module that is to resume from them."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .safe_io import CheckpointError, load_torch_file, state_mismatch

RESUME_FIX = ("Resume with the configuration that wrote it, start afresh with resume=never, or pass another "
              "out_dir.")


def check_training_checkpoint(path: str | os.PathLike, module: nn.Module) -> Path:
    """Raise one CheckpointError unless `path` is a Lightning checkpoint whose weights fit `module` exactly."""
    p = Path(path)
    try:
        raw = load_torch_file(p, missing=("no such checkpoint.", "Use resume=auto, resume=never or a .ckpt path."))
    except CheckpointError as e:
        raise CheckpointError(None, f"cannot resume: {e}", None if "resume=" in str(e) else RESUME_FIX) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("state_dict"), dict) or "loops" not in raw:
        top = list(raw)[:6] if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(p, f"is not a Lightning training checkpoint (no state_dict and loops; top level: "
                              f"{top}).", RESUME_FIX)
    written_by = (raw.get("ganinv") or {}).get("method")
    if written_by is not None and written_by != type(module).__name__:
        raise CheckpointError(p, f"was written by {written_by}, not {type(module).__name__}.", RESUME_FIX)
    theirs_hash = (raw.get("hyper_parameters") or {}).get("generator_hash")
    own_hash = getattr(module, "hparams", {}).get("generator_hash")
    if theirs_hash and own_hash and theirs_hash != own_hash:
        raise CheckpointError(p, f"was trained against another generator (content hash {theirs_hash[:12]}, the "
                              f"configured one is {own_hash[:12]}).", RESUME_FIX)
    mismatch = state_mismatch(module.state_dict(), raw["state_dict"])
    if mismatch:
        raise CheckpointError(p, f"was written by another model configuration ({type(module).__name__}: "
                              f"{mismatch}).", RESUME_FIX)
    return p
