"""LightningModules: the inversion methods and the StyleGAN2 trainer."""
