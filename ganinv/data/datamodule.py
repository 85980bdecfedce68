"""`StyleGAN2DataModule`: one LightningDataModule for every method, source and task."""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from .datasets import DataError, GeneratedDataset, ImageFolderDataset, ToyDataset, list_images
from .degradations import Task, make_task
from .transforms import TaskTransform

SOURCES = ("images", "generated", "toy")


class TaskDataset(Dataset):
    """A source wrapped with the task transform; eval items are deterministic per index, train items per worker."""

    def __init__(self, source: Dataset, transform: TaskTransform, train: bool, seed: int):
        self.source, self.transform, self.train, self.seed = source, transform, train, seed

    def __len__(self) -> int:
        return len(self.source)

    def generator(self, index: int) -> torch.Generator:
        # Train: from the (per-worker seeded) global RNG, so epochs differ. Eval: from the index alone.
        seed = int(torch.randint(2**62, ())) if self.train else self.seed * 7_919 + int(index)
        return torch.Generator().manual_seed(seed)

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        # Sources that render whole batches at once (toy, generated) do so here.
        getitems = getattr(self.source, "__getitems__", None)
        items = getitems(list(indices)) if getitems else [self.source[i] for i in indices]
        return [self.transform(item, self.generator(i)) for i, item in zip(indices, items, strict=True)]


def seed_worker(worker_id: int, rank: int = 0) -> None:
    """Seed a loader worker from the loader's base seed, its id and the process rank (deterministic, distinct)."""
    seed = (torch.initial_seed() + 1_000_003 * rank) % 2**63
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


class StyleGAN2DataModule(pl.LightningDataModule):
    """Batches `{"x": input, "y": target, "index", ...}` in [-1, 1] from `images`, `generated` or `toy` data.

    `x` is the task's input at `input_size` (the encoder's), `y` the target at `target_size` (the losses').
    Source options go in the dict named after the source; task options (`factors`, `coverage`, `n_classes`)
    in `task_options`.
    """

    def __init__(self, source: str = "toy", task: str = "inversion", input_size: int = 64, target_size: int = 64,
                 batch_size: int = 8, val_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = True, persistent_workers: bool = True, flip: bool = True, seed: int = 0,
                 task_options: Mapping[str, Any] | None = None, images: Mapping[str, Any] | None = None,
                 generated: Mapping[str, Any] | None = None, toy: Mapping[str, Any] | None = None,
                 generator: torch.nn.Module | str | None = None):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"data source must be one of {SOURCES}, got {source!r}")
        self.source, self.input_size, self.target_size = source, int(input_size), int(target_size)
        self.batch_size, self.val_batch_size = int(batch_size), int(val_batch_size or batch_size)
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers, self.flip, self.seed = bool(persistent_workers), bool(flip), int(seed)
        options = dict(task_options or {})
        if source == "toy":  # the toy label set unless told otherwise
            from ganinv.toy.render import NUM_LABELS

            options.setdefault("n_classes", NUM_LABELS)
        self.task: Task = make_task(task, **options)
        self.options = {"images": dict(images or {}), "generated": dict(generated or {}), "toy": dict(toy or {})}
        self.generator = generator
        self.train_set: TaskDataset | None = None
        self.val_set: TaskDataset | None = None
        self._check_task()

    @property
    def input_channels(self) -> int:
        """Channels of `x` for this task (3, 4 for inpainting, n_classes, 1 for sketches)."""
        return self.task.input_channels

    def _check_task(self) -> None:
        needs = set(self.task.needs)
        if self.source == "generated" and needs:
            raise DataError(f"task {self.task.name!r} needs {sorted(needs)}, which generated samples do not have; "
                            "use data=toy or data=images with paired maps.")
        if self.source == "images" and "frontal" in needs:
            raise DataError("task 'frontalization' needs frontal targets, which only the toy source renders; "
                            "use data=toy.")
        if self.source == "images" and needs and not self.options["images"].get("maps_root"):
            raise DataError(f"task {self.task.name!r} on real images needs paired maps: set data.images.maps_root "
                            "(and test_maps_root for a separate test folder) to folders of maps named like the "
                            "images.")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        load = max(self.input_size, self.target_size)
        train, val = getattr(self, f"_{self.source}")(load)
        self.train_set = TaskDataset(train, TaskTransform(self.task, self.input_size, self.target_size, self.flip),
                                     train=True, seed=self.seed)
        self.val_set = TaskDataset(val, TaskTransform(self.task, self.input_size, self.target_size, False),
                                   train=False, seed=self.seed)

    def _images(self, load: int) -> tuple[Dataset, Dataset]:
        o = dict(self.options["images"])
        kind = self.task.needs[0] if self.task.needs else None
        common = {"resolution": load, "crop": o.get("crop", "center"), "check": o.get("check", "header"),
                  "max_bad_fraction": float(o.get("max_bad_fraction", 0.05)), "map_kind": kind}
        if o.get("train_root"):
            test_root = o.get("test_root") or o["train_root"]
            return (ImageFolderDataset(o["train_root"], maps_root=o.get("maps_root"), **common),
                    ImageFolderDataset(test_root, maps_root=o.get("test_maps_root") or o.get("maps_root"), **common))
        root = o.get("root")
        if not root:
            raise DataError("data.images needs `root` (one folder, split by `val_fraction`) or `train_root` and "
                            "`test_root`.")
        files = list_images(root)
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(int(o.get("split_seed", 0))))
        n_val = max(1, round(float(o.get("val_fraction", 0.05)) * len(files))) if len(files) > 1 else 0
        val_files = sorted(files[i] for i in order[:n_val].tolist())
        train_files = sorted(files[i] for i in order[n_val:].tolist()) or val_files
        return (ImageFolderDataset(root, files=train_files, maps_root=o.get("maps_root"), **common),
                ImageFolderDataset(root, files=val_files or train_files, maps_root=o.get("maps_root"), **common))

    def _toy(self, load: int) -> tuple[Dataset, Dataset]:
        o = self.options["toy"]
        resolution, seed = int(o.get("resolution", load)), int(o.get("seed", self.seed))
        frontal = "frontal" in self.task.needs
        # Different seeds keep the validation faces out of the training set.
        return (ToyDataset(int(o.get("n_train", 50_000)), resolution, seed, frontal),
                ToyDataset(int(o.get("n_val", 1_000)), resolution, seed + 1_000_000, frontal))

    def _generated(self, load: int) -> tuple[Dataset, Dataset]:
        o = self.options["generated"]
        g = resolve_generator(self.generator if self.generator is not None else o.get("generator"))
        seed, trunc = int(o.get("seed", self.seed)), float(o.get("truncation", 1.0))
        return (GeneratedDataset(g, int(o.get("n_train", 10_000)), seed, trunc, load),
                GeneratedDataset(g, int(o.get("n_val", 500)), seed + 1_000_000, trunc, load))

    def _loader(self, dataset: Dataset | None, batch_size: int, train: bool) -> DataLoader:
        if dataset is None:
            self.setup()
            dataset = self.train_set if train else self.val_set
        rank = self.trainer.global_rank if self.trainer is not None else int(os.environ.get("RANK", 0))
        workers = self.num_workers
        return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(dataset) > batch_size,
                          num_workers=workers, pin_memory=self.pin_memory and torch.cuda.is_available(),
                          persistent_workers=self.persistent_workers and workers > 0,
                          worker_init_fn=functools.partial(seed_worker, rank=rank),
                          generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, train=False)


def resolve_generator(g: torch.nn.Module | str | None) -> torch.nn.Module:
    """A generator object as given, `"toy"` for the committed toy generator, or a checkpoint path to load."""
    if g is None:
        raise DataError("data=generated needs a generator: pass `generator=` (an object with rosinality's API), "
                        "'toy', or a checkpoint path in data.generated.generator.")
    if isinstance(g, torch.nn.Module):
        return g.eval()
    if g == "toy":
        from ganinv.toy import load_generator

        return load_generator()
    from ganinv.stylegan2 import load_generator as load

    return load(g)
