"""Optuna sweeps (`hydra/sweeper=optuna`): the search space (`space`), the shared study and its workers (`study`),
the ask-launch-tell loop (`sweeper`), a trial's reports and pruning inside its job (`pruning`) and the results a
sweep leaves (`results`)."""
