"""ganinv: StyleGAN2 GAN inversion research on PyTorch Lightning."""

__version__ = "0.1.0"
