"""`StyleGAN2DataModule`: one LightningDataModule for every method, source and task."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .datasets import CHECKS, GeneratedDataset, ImageFolderDataset, ToyDataset
from .degradations import Task, make_task
from .files import DataError, list_images
from .transforms import CROPS, PROTOCOL_SIZE, TaskTransform

SOURCES = ("images", "generated", "toy")
log = logging.getLogger("ganinv")


class TaskDataset(Dataset):
    """A source wrapped with the task transform; every item's randomness comes from its key alone.

    Eval keys are indices. Train keys come from `EpochSampler` as `epoch * len + index`, so a flip or a mask
    depends on (seed, epoch, index) only: the same on any worker count, rank or resumed run.
    """

    def __init__(self, source: Dataset, transform: TaskTransform, train: bool, seed: int):
        self.source, self.transform, self.train, self.seed = source, transform, train, seed

    def __len__(self) -> int:
        return len(self.source)

    def generator(self, key: int) -> torch.Generator:
        salt = 1_000_003 if self.train else 7_919
        return torch.Generator().manual_seed((self.seed * salt + int(key)) % 2**63)

    def __getitem__(self, key: int) -> dict:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: Sequence[int]) -> list[dict]:
        n = len(self.source)
        indices = [int(k) % n for k in keys]
        # Sources that render whole batches at once (toy, generated) do so here.
        getitems = getattr(self.source, "__getitems__", None)
        items = getitems(indices) if getitems else [self.source[i] for i in indices]
        return [self.transform(item, self.generator(k)) for k, item in zip(keys, items, strict=True)]


class EpochSampler(DistributedSampler):
    """`DistributedSampler` (shuffled from seed + epoch alone, sharded by rank) that yields `epoch * len + index`
    keys. `resume_at(epoch, skip)` drops the first `skip` keys of that epoch once: a run resumed mid-epoch sees
    exactly the batches an uninterrupted run would have."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, skip: int) -> None:
        self._resume = (int(epoch), int(skip))

    def __iter__(self):
        n = len(self.dataset)
        keys = [self.epoch * n + i for i in super().__iter__()]
        if self._resume is not None:
            epoch, skip = self._resume
            self._resume = None
            if epoch == self.epoch:
                keys = keys[skip:]
        return iter(keys)


def seed_worker(worker_id: int, rank: int = 0) -> None:
    """Seed a loader worker from the loader's base seed, its id and the process rank (deterministic, distinct)."""
    seed = (torch.initial_seed() + 1_000_003 * rank) % 2**63
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


SOURCE_OPTIONS = {
    "images": ("root", "train_root", "test_root", "val_fraction", "split_seed", "overlap", "crop", "check",
               "max_bad_fraction", "maps_root", "test_maps_root", "align"),
    "generated": ("generator", "n_train", "n_val", "seed", "truncation"),
    "toy": ("n_train", "n_val", "resolution", "seed"),
}
OVERLAP = ("refuse", "allow")


def check_keys(given: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    """A DataError naming every unknown key of `given` by its full config key, with the valid ones."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise DataError(f"unknown option(s) {', '.join(f'{where}.{k}' for k in unknown)}; valid keys of {where}: "
                        f"{', '.join(valid)}.")


def check_choice(value: Any, choices: Sequence[str], key: str) -> None:
    if value not in choices:
        raise DataError(f"{key}={value!r} is not one of {', '.join(choices)}.")


class StyleGAN2DataModule(pl.LightningDataModule):
    """Batches `{"x": input, "y": target, "index", ...}` in [-1, 1] from `images`, `generated` or `toy` data.

    `batch_size` (and `val_batch_size`) are global: each of the N processes loads batch_size / N images, so a
    config means the same optimisation on any number of processes.
    `x` is the task's input at `input_size` (the encoder's), `y` the target at `target_size` (the losses'); None
    is the official 256 px (`ganinv-train` and `ganinv-eval` fill unset sizes from the generator and method).
    Source options go in the dict named after the source; task options (`factors`, `coverage`, `n_classes`)
    in `task_options`. Every option is checked here, once: an unknown key or value is a DataError naming it.
    """

    def __init__(self, source: str = "toy", task: str = "inversion", input_size: int | None = 64,
                 target_size: int | None = 64,
                 batch_size: int = 8, val_batch_size: int | None = None, num_workers: int = 0,
                 pin_memory: bool = True, persistent_workers: bool = True, flip: bool = True, seed: int = 0,
                 task_options: Mapping[str, Any] | None = None, images: Mapping[str, Any] | None = None,
                 generated: Mapping[str, Any] | None = None, toy: Mapping[str, Any] | None = None,
                 generator: torch.nn.Module | str | None = None, **unknown: Any):
        super().__init__()
        check_keys(unknown, [k for k in inspect.signature(type(self).__init__).parameters if k not in
                             ("self", "unknown")], "data")
        check_choice(source, SOURCES, "data.source")
        self.source = source
        self.input_size, self.target_size = int(input_size or PROTOCOL_SIZE), int(target_size or PROTOCOL_SIZE)
        self.batch_size, self.val_batch_size = int(batch_size), int(val_batch_size or batch_size)
        self.num_workers, self.pin_memory = int(num_workers), bool(pin_memory)
        self.persistent_workers, self.flip, self.seed = bool(persistent_workers), bool(flip), int(seed)
        self.options = {"images": dict(images or {}), "generated": dict(generated or {}), "toy": dict(toy or {})}
        for name, valid in SOURCE_OPTIONS.items():
            check_keys(self.options[name], valid, f"data.{name}")
        o = self.options["images"]
        check_choice(o.get("crop", "center"), CROPS, "data.images.crop")
        check_choice(o.get("check", "header"), CHECKS, "data.images.check")
        check_choice(o.get("overlap", "refuse"), OVERLAP, "data.images.overlap")
        options = dict(task_options or {})
        if source == "toy":  # the toy label set unless told otherwise
            from ganinv.toy.render import NUM_LABELS

            options.setdefault("n_classes", NUM_LABELS)
        try:
            self.task: Task = make_task(task, **options)
        except (TypeError, ValueError) as e:
            raise DataError(f"data.task={task!r}: {e}") from None
        self.generator = generator
        self.train_set: TaskDataset | None = None
        self.val_set: TaskDataset | None = None
        self._resume: dict | None = None
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
                            "(and data.images.test_maps_root for a separate test folder) to folders of maps named "
                            "like the images.")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        load = max(self.input_size, self.target_size)
        train, val = getattr(self, f"_{self.source}")(load)
        if self.source == "images" and not self.options["images"].get("align") and self._rank()[0] == 0:
            from .photos import warn_if_unaligned

            warn_if_unaligned(train.files, load)  # faces at 256 px and more: FFHQ-aligned, as encoders expect
        self.train_set = TaskDataset(train, TaskTransform(self.task, self.input_size, self.target_size, self.flip),
                                     train=True, seed=self.seed)
        self.val_set = None if val is None else TaskDataset(
            val, TaskTransform(self.task, self.input_size, self.target_size, False), train=False, seed=self.seed)

    def _images(self, load: int) -> tuple[Dataset, Dataset | None]:
        o = self.options["images"]
        kind = self.task.needs[0] if self.task.needs else None
        common = {"resolution": load, "crop": o.get("crop", "center"), "check": o.get("check", "header"),
                  "max_bad_fraction": float(o.get("max_bad_fraction", 0.05)), "map_kind": kind,
                  "align": bool(o.get("align", False))}
        root, train_root, test_root = o.get("root"), o.get("train_root"), o.get("test_root")
        if root and (train_root or test_root):
            raise DataError("data.images: set either data.images.root (one folder, split by val_fraction) or "
                            "data.images.train_root + data.images.test_root, not both.")
        if train_root or test_root:
            if not (train_root and test_root):
                raise DataError("data.images.train_root and data.images.test_root go together (training and "
                                "validation folders); to split one folder, set data.images.root and "
                                "data.images.val_fraction instead.")
            if _overlapping(train_root, test_root) and o.get("overlap", "refuse") != "allow":
                raise DataError(f"data.images.test_root={test_root} overlaps data.images.train_root={train_root}: "
                                "validation would score training images. Use separate folders, or set "
                                "data.images.overlap=allow if that is what you want.")
            return (ImageFolderDataset(train_root, maps_root=o.get("maps_root"), split="training", **common),
                    ImageFolderDataset(test_root, maps_root=o.get("test_maps_root") or o.get("maps_root"),
                                       split="validation", **common))
        if not root:
            raise DataError("data.images needs data.images.root (one folder, split by data.images.val_fraction) or "
                            "data.images.train_root and data.images.test_root.")
        files = list_images(root)
        fraction = float(o.get("val_fraction", 0.05))
        n_val = 0 if fraction == 0 else max(1, round(fraction * len(files)))
        if not 0 <= fraction < 1 or n_val >= len(files):
            raise DataError(f"data.images.val_fraction={fraction} leaves no training images of the {len(files)} in "
                            f"{root}; use a fraction in [0, 1) (0: no validation set) that keeps at least one.")
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(int(o.get("split_seed", 0))))
        val_files = sorted(files[i] for i in order[:n_val].tolist())
        train_files = sorted(files[i] for i in order[n_val:].tolist())
        train = ImageFolderDataset(root, files=train_files, maps_root=o.get("maps_root"), split="training", **common)
        return train, (ImageFolderDataset(root, files=val_files, maps_root=o.get("maps_root"), split="validation",
                                          **common) if val_files else None)

    def _toy(self, load: int) -> tuple[Dataset, Dataset | None]:
        o = self.options["toy"]
        resolution, seed = int(o.get("resolution", load)), int(o.get("seed", self.seed))
        frontal, n_val = "frontal" in self.task.needs, int(o.get("n_val", 1_000))
        # Different seeds keep the validation faces out of the training set.
        return (ToyDataset(int(o.get("n_train", 50_000)), resolution, seed, frontal),
                ToyDataset(n_val, resolution, seed + 1_000_000, frontal) if n_val > 0 else None)

    def _generated(self, load: int) -> tuple[Dataset, Dataset | None]:
        o = self.options["generated"]
        g = resolve_generator(self.generator if self.generator is not None else o.get("generator"))
        seed, trunc, n_val = int(o.get("seed", self.seed)), float(o.get("truncation", 1.0)), int(o.get("n_val", 500))
        return (GeneratedDataset(g, int(o.get("n_train", 10_000)), seed, trunc, load),
                GeneratedDataset(g, n_val, seed + 1_000_000, trunc, load) if n_val > 0 else None)

    def _loader(self, dataset: Dataset, batch_size: int, sampler=None) -> DataLoader:
        workers = self.num_workers
        # Training drops the last incomplete batch (a split smaller than one batch gives one short batch).
        drop_last = sampler is not None and len(sampler) > batch_size
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                          num_workers=workers, pin_memory=self.pin_memory and torch.cuda.is_available(),
                          persistent_workers=self.persistent_workers and workers > 0,
                          worker_init_fn=functools.partial(seed_worker, rank=self._rank()[0]),
                          generator=torch.Generator().manual_seed(self.seed))

    def _rank(self) -> tuple[int, int]:
        if self.trainer is not None:
            return self.trainer.global_rank, self.trainer.world_size
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))

    def per_process(self, batch_size: int, key: str) -> int:
        """A global `batch_size` (option `key`) split over the processes; it must divide."""
        world = self._rank()[1]
        if batch_size % world:
            raise DataError(f"{key}={batch_size} is the global batch: it must divide over {world} processes "
                            f"(trainer.devices x trainer.num_nodes). Choose a multiple of {world}, or a number of "
                            f"processes that divides {batch_size}.")
        return batch_size // world

    def train_dataloader(self) -> DataLoader:
        self.setup()
        rank, world = self._rank()
        batch = self.per_process(self.batch_size, "data.batch_size")
        if rank == 0:
            log.info("global batch %d = %d process(es) x %d image(s)", self.batch_size, world, batch)
        sampler = EpochSampler(self.train_set, world, rank, self.seed)
        if self._resume is not None:  # restored from a checkpoint taken mid-epoch
            sampler.resume_at(self._resume["epoch"], self._resume["batches"] * batch)
            self._resume = None
        return self._loader(self.train_set, batch, sampler)

    def val_dataloader(self) -> DataLoader | list:
        self.setup()
        if self.val_set is None:
            return []
        return self._loader(self.val_set, self.per_process(self.val_batch_size, "data.val_batch_size"))

    def test_dataloader(self) -> DataLoader | list:
        return self.val_dataloader()

    def state_dict(self) -> dict:
        """Where training stands in the current epoch (saved in checkpoints; resumes the data exactly)."""
        if self.trainer is None:
            return {}
        loop = self.trainer.fit_loop
        return {"epoch": int(loop.epoch_progress.current.processed),
                "batches": int(loop.epoch_loop.batch_progress.current.processed)}

    def load_state_dict(self, state: dict) -> None:
        self._resume = dict(state) if state.get("batches") else None


def _overlapping(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    a, b = Path(a).expanduser().resolve(), Path(b).expanduser().resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


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
    from ganinv.checkpoints import load_generator as load

    return load(g)
