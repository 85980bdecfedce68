"""`Pieces`: a long job's results saved piece by piece, so that a killed job, run again, redoes only the piece it
was working on (`ganinv-invert`, `ganinv-eval`)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from .safe_io import atomic_save, atomic_write


class Pieces:
    """Pieces under `folder`, each written atomically. `job` (e.g. the resolved configuration and the inputs) is
    what the pieces were computed from: a folder from another job is cleared. Under DDP rank 0 checks the folder
    and the other ranks wait for it."""

    def __init__(self, folder: str | Path, job: Any):
        from ganinv.distributed import active, rank_and_world

        self.folder = Path(folder)
        digest = hashlib.sha256(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()
        if rank_and_world()[0] == 0:
            stamp = self.folder / "job"
            if not stamp.is_file() or stamp.read_text() != digest:
                shutil.rmtree(self.folder, ignore_errors=True)
                self.folder.mkdir(parents=True)
                atomic_write(stamp, lambda f: f.write(digest.encode()))
        if active():
            torch.distributed.barrier()

    def get(self, name: str) -> Any | None:
        """The piece `name`, or None when it has not been computed yet."""
        path = self.folder / f"{name}.pt"
        return torch.load(path, weights_only=True) if path.is_file() else None

    def put(self, name: str, value: Any) -> None:
        atomic_save(value, self.folder / f"{name}.pt")

    def clear(self) -> None:
        """Once the job's result is written."""
        shutil.rmtree(self.folder, ignore_errors=True)
