"""Image files on disk: which files are images, how a folder is listed, and the error every data module raises for
a folder or file it cannot use (each module of `ganinv.data` takes them from here)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ganinv.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")



ROOT_KEYS = "data.images.root, or data.images.train_root / data.images.test_root"


def list_images(root: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                root_key: str = ROOT_KEYS) -> list[Path]:
    """All image files under `root` (recursive, any case of extension), sorted; errors name the folder and the
    option that set it (`root_key`)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: image folder does not exist. Point {root_key} at a folder of .jpg / .png / .webp "
                        "images.")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a folder. Point the data root at the folder that holds the images.")
    exts = {e.lower() for e in extensions}
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())
    if not files:
        raise DataError(f"{root}: no images ({', '.join(sorted(exts))}) found in this folder or below it. "
                        "Check the path, or copy the data set there.")
    return files
