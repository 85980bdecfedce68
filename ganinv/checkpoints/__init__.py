"""Every checkpoint format ganinv reads or writes, in one place."""

from .generators import extract_generator, generator_from_state_dict, load_generator, save_generator
from .lightning import check_training_checkpoint
from .safe_io import CheckpointError, atomic_save, atomic_write, check_file, file_kind, load_torch_file

__all__ = ["CheckpointError", "atomic_save", "atomic_write", "check_file", "check_training_checkpoint",
           "extract_generator", "file_kind", "generator_from_state_dict", "load_generator", "load_official",
           "load_torch_file", "save_generator"]


def __getattr__(name: str):
    if name == "load_official":  # encoders import this package; resolve lazily to avoid a cycle
        from .official import load_official

        return load_official
    raise AttributeError(name)
