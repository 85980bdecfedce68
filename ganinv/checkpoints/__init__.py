"""Every checkpoint format ganinv reads or writes, in one place."""

from .generators import extract_generator, generator_from_state_dict, load_generator, save_generator
from .safe_io import CheckpointError, atomic_save, check_file, load_torch_file

__all__ = ["CheckpointError", "atomic_save", "check_file", "extract_generator", "generator_from_state_dict",
           "load_generator", "load_official", "load_torch_file", "save_generator"]


def __getattr__(name: str):
    if name == "load_official":  # encoders import this package; resolve lazily to avoid a cycle
        from .official import load_official

        return load_official
    raise AttributeError(name)
