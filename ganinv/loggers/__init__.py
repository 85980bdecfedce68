"""Loggers: W&B (`wandb`: online when logged in, else offline; a continued run keeps its W&B run) and the reader of
W&B's offline transaction log (`wandb_files`)."""
