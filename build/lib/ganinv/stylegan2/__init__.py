"""Pure-PyTorch StyleGAN2 with rosinality's API and key names, and loaders for official checkpoints."""

from .generator import Discriminator, Generator, channel_table

__all__ = ["Generator", "Discriminator", "channel_table", "load_generator"]


def __getattr__(name: str):
    # Imported lazily: the checkpoint package itself builds Generators from this package.
    if name == "load_generator":
        from ganinv.checkpoints import load_generator

        return load_generator
    raise AttributeError(name)
