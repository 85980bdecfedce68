"""Every checkpoint format ganinv reads or writes, in one place (above the model code it builds: `stylegan2`,
`encoders`; below `data`, `toy` and `methods`)."""

from .generators import extract_generator, generator_from_state_dict, load_generator, save_generator
from .lightning import check_training_checkpoint
from .official import OfficialModel, is_ganinverter, load_official
from .safe_io import (
    CheckpointError,
    atomic_save,
    atomic_write,
    check_file,
    file_kind,
    load_torch_file,
    state_hash,
)

__all__ = ["CheckpointError", "atomic_save", "atomic_write", "check_file", "check_training_checkpoint",
           "extract_generator", "file_kind", "generator_from_state_dict", "is_ganinverter", "load_generator",
           "load_official",
           "load_torch_file", "OfficialModel", "save_generator", "state_hash"]
