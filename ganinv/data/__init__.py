"""Data: the shared StyleGAN2 DataModule, its sources, transforms and task degradations."""

from .datamodule import StyleGAN2DataModule, TaskDataset, seed_worker
from .datasets import GeneratedDataset, ImageFolderDataset, ToyDataset
from .degradations import TASKS, Task, make_task
from .files import DataError, list_images

__all__ = ["DataError", "GeneratedDataset", "ImageFolderDataset", "StyleGAN2DataModule", "TASKS", "Task",
           "TaskDataset", "ToyDataset", "list_images", "make_task", "seed_worker"]
