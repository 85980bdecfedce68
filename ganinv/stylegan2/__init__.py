"""Pure-PyTorch StyleGAN2 with rosinality's API and key names (model code only: the checkpoint loaders are in
`ganinv.checkpoints`, the layer above, e.g. `ganinv.checkpoints.load_generator`)."""

from .generator import Discriminator, Generator, channel_table

__all__ = ["Generator", "Discriminator", "channel_table"]
