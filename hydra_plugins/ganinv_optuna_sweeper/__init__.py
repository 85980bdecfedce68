"""ganinv's Optuna sweeper as a Hydra plugin (`hydra/sweeper=optuna`, conf/hydra/sweeper/optuna.yaml). Hydra
finds plugins only in the `hydra_plugins` namespace; the work is done in `ganinv.sweeps`."""
