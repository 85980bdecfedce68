"""Sources of clean images: a folder tree of real images, samples of a generator, and toy renders.

Every source item is a dict with "image" float [3, R, R] in [-1, 1] and "index"; toy items add "attrs",
"segmentation", "sketch" and "frontal", generated items add "w" [n_latent, style_dim], and folder items with paired
maps add "segmentation" or "sketch". `ImageFolderDataset` also exposes the image as "y" (its public contract).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from ganinv.warn import warn

from .files import IMAGE_EXTENSIONS, ROOT_KEYS, DataError, list_images
from .transforms import CROPS, load_image, load_map

MAP_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".webp")
CHECKS = ("none", "header", "full")


def check_image(path: Path, level: str) -> str | None:
    """Why `path` cannot be used (None if it can): 'header' opens and verifies it, 'full' decodes every pixel."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        if level == "none":
            return None
        with Image.open(path) as img:
            img.verify()
        if level == "full":
            with Image.open(path) as img:
                img.load()
    except Exception as e:  # noqa: BLE001 - any decoder failure makes the file unusable
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:120] if str(e).strip() else 'unreadable'}"
    return None


def report_bad(bad: dict[Path, str], total: int, max_bad_fraction: float, where: str,
               bad_key: str | None = "data.images.max_bad_fraction") -> None:
    """One warning listing every unusable file; an error if too large a fraction is unusable.

    `where` names what `total` counts, e.g. "/data/ffhq (training split)" or "/data/ffhq"; `bad_key` is the option
    that sets the fraction (None: the command has none)."""
    if not bad:
        return
    lines = [f"  {p}: {why}" for p, why in list(bad.items())[:50]]
    more = f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else ""
    listing = "\n".join(lines) + more
    if len(bad) > max_bad_fraction * total:
        limit = f"{bad_key}={max_bad_fraction}" if bad_key else f"{max_bad_fraction:g} of them"
        fix = f", or raise {bad_key} if skipping them is acceptable" if bad_key else ""
        raise DataError(f"{where}: {len(bad)} of its {total} image files are unusable (more than {limit}):\n"
                        f"{listing}\nRe-copy or delete them{fix}.")
    warn(f"{where}: skipping {len(bad)} of its {total} image files, which are unusable:\n{listing}")


class ImageFolderDataset(Dataset):
    """Aligned images from a folder tree (FFHQ / CelebA-HQ layout), each as {"y", "image", "index"} at `resolution`.

    Any colour mode is converted to RGB and any size resized (`crop="center"` crops to a square first).
    `files` restricts it to part of the folder, and `split` names that part in messages ("training").
    Unusable files are skipped with one warning (`check` controls how hard they are looked at when listed;
    files that fail later are skipped when read). With `maps_root`, each image is paired by relative path and stem
    with a segmentation (`map_kind="segmentation"`, class ids) or sketch map, and a missing map is an error.
    """

    def __init__(self, root: str | os.PathLike, resolution: int = 256, crop: str = "center",
                 files: Sequence[Path] | None = None, check: str = "header", max_bad_fraction: float = 0.05,
                 maps_root: str | os.PathLike | None = None, map_kind: str | None = None,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS, split: str | None = None,
                 root_key: str = ROOT_KEYS, bad_key: str | None = "data.images.max_bad_fraction",
                 align: bool = False):
        if check not in CHECKS:
            raise DataError(f"check={check!r} is not one of {', '.join(CHECKS)} (data.images.check).")
        if crop not in CROPS:
            raise DataError(f"crop={crop!r} is not one of {', '.join(CROPS)} (data.images.crop).")
        self.root, self.resolution, self.crop = Path(root).expanduser(), int(resolution), crop
        self.max_bad_fraction, self.bad_key = max_bad_fraction, bad_key
        self.where = f"{self.root} ({split} split)" if split else str(self.root)
        candidates = list(files) if files is not None else list_images(self.root, extensions, root_key)
        bad = {p: why for p in candidates if (why := check_image(p, check)) is not None}
        report_bad(bad, len(candidates), max_bad_fraction, self.where, bad_key)
        self.files = [p for p in candidates if p not in bad]
        self.aligned: dict[Path, Path] = {}
        if align and maps_root is not None:
            raise DataError(f"{self.where}: align=true cannot align paired maps with the photos; align the photos "
                            "and their maps with one tool, or leave align off.")
        if align:
            from .photos import aligned_copies

            self.aligned, faceless = aligned_copies(self.files, self.resolution)
            report_bad(faceless, len(candidates), 1.0, self.where)  # listed; never the end of the run
            self.files = [p for p in self.files if p in self.aligned]
            if not self.files:
                raise DataError(f"{self.where}: no face found in any image, so align=true has nothing to align.")
            bad.update(faceless)
        self.total, self.bad = len(candidates), dict(bad)
        self.map_kind, self.maps = map_kind, None
        if maps_root is not None:
            if map_kind not in ("segmentation", "sketch"):
                raise ValueError(f"map_kind must be 'segmentation' or 'sketch' with maps_root, got {map_kind!r}")
            self.maps = pair_maps(self.files, self.root, Path(maps_root).expanduser())

    def __len__(self) -> int:
        return len(self.files)

    def load(self, path: Path) -> torch.Tensor:
        """The image of one of `files` (its aligned crop with `align`), [3, R, R] in [-1, 1]."""
        return load_image(self.aligned.get(path, path), self.resolution, self.crop)

    def __getitem__(self, index: int) -> dict:
        # A file that fails only when decoded is skipped here: warn once, then serve the next usable image.
        for step in range(len(self.files)):
            i = (index + step) % len(self.files)
            path = self.files[i]
            if path in self.bad:
                continue
            try:
                image = self.load(path)
            except Exception as e:  # noqa: BLE001
                self.bad[path] = f"{type(e).__name__}: {e}"
                report_bad({path: self.bad[path]}, self.total, 1.0, self.where)
                if len(self.bad) > self.max_bad_fraction * self.total:
                    report_bad(self.bad, self.total, self.max_bad_fraction, self.where, self.bad_key)
                continue
            item = {"image": image, "y": image, "index": index}
            if self.maps is not None:
                item[self.map_kind] = load_map(self.maps[i], self.resolution, self.map_kind, self.crop)
            return item
        raise DataError(f"{self.root}: no readable image left; every file failed to decode.")


def pair_maps(files: Sequence[Path], root: Path, maps_root: Path) -> list[Path]:
    """The map for each image: same relative folder and file stem under `maps_root`, any map extension."""
    if not maps_root.is_dir():
        raise DataError(f"{maps_root}: paired-map folder does not exist. Set maps_root to the folder of "
                        "segmentation / sketch maps named like the images.")
    index = {}
    for p in maps_root.rglob("*"):
        if p.suffix.lower() in MAP_EXTENSIONS:
            index.setdefault(p.relative_to(maps_root).with_suffix("").as_posix(), p)
    maps, missing = [], []
    for f in files:
        key = f.relative_to(root).with_suffix("").as_posix() if f.is_relative_to(root) else f.stem
        maps.append(index.get(key))
        if maps[-1] is None:
            missing.append(maps_root / key)
    if missing:
        shown = "\n".join(f"  {m}.png" for m in missing[:20])
        raise DataError(f"{maps_root}: {len(missing)} image(s) have no paired map, e.g.\n{shown}\n"
                        "Add the maps (same relative path and file name as the image), or remove those images.")
    return maps


class ToyDataset(Dataset):
    """`n` toy renders, the same for an index on every rank and epoch; batches are rendered in one call.

    Items carry the attributes, segmentation and sketch, and the frontal render when `frontal` (it doubles the cost).
    """

    def __init__(self, n: int, resolution: int = 64, seed: int = 0, frontal: bool = True):
        from ganinv.toy.attributes import sample_attributes

        self.n, self.resolution, self.seed, self.frontal = int(n), int(resolution), int(seed), frontal
        self.attrs = sample_attributes(self.n, self.seed)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        from ganinv.toy.render import render

        idx = torch.as_tensor(list(indices), dtype=torch.long)
        b = render(len(idx), self.resolution, attrs=self.attrs[idx], frontal=self.frontal)
        items = [{"image": b.images[k], "attrs": b.attrs[k], "segmentation": b.segmentation[k],
                  "sketch": b.sketches[k], "index": int(i)} for k, i in enumerate(idx)]
        for k, item in enumerate(items if self.frontal else []):
            item["frontal"] = b.frontal[k]
        return items


class GeneratedDataset(Dataset):
    """`n` samples of a StyleGAN2 generator with their codes; index i always gives the same z, w and image.

    Takes any generator with rosinality's API (`g([w], input_is_latent=True)`, `g.get_latent(z)`, `g.n_latent`,
    `g.style_dim`); fixed noise buffers are used so samples do not change between reads.
    """

    def __init__(self, generator: torch.nn.Module, n: int, seed: int = 0, truncation: float = 1.0,
                 resolution: int | None = None, chunk: int = 16):
        self.g, self.n, self.seed, self.truncation = generator, int(n), int(seed), float(truncation)
        self.resolution, self.chunk = resolution, chunk
        self.style_dim = int(getattr(generator, "style_dim", 512))

    def __len__(self) -> int:
        return self.n

    def z(self, index: int) -> torch.Tensor:
        return torch.randn(self.style_dim, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + index))

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    @torch.no_grad()
    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        from .transforms import resize

        device = next(self.g.parameters()).device
        items = []
        for start in range(0, len(indices), self.chunk):
            part = list(indices)[start:start + self.chunk]
            # w one index at a time: exactly the same code whatever batch an index lands in.
            w = torch.cat([self.g.get_latent(self.z(int(i))[None].to(device)) for i in part])
            if self.truncation < 1:
                w = self.g.latent_avg.to(w) + self.truncation * (w - self.g.latent_avg.to(w))
            w_plus = w.unsqueeze(1).repeat(1, self.g.n_latent, 1)
            img, _ = self.g([w_plus], input_is_latent=True, randomize_noise=False)
            img = img.clamp(-1, 1).float().cpu()
            if self.resolution is not None:
                img = resize(img, self.resolution)
            items += [{"image": img[k], "w": w_plus[k].cpu(), "index": int(i)} for k, i in enumerate(part)]
        return items
