"""The packages: ganinv's own (with `ganinv.toy.assets`), and the top-level `conf/` tree shipped as `ganinv.conf`
with every config group a package of its own, so that setuptools ships their files (package data, declared in
pyproject.toml), and the Optuna sweeper's Hydra plugin (Hydra finds plugins in the `hydra_plugins` namespace)."""

from setuptools import find_namespace_packages, setup

groups = [f"ganinv.conf.{p}" for p in find_namespace_packages(where="conf")]
setup(packages=[*find_namespace_packages(include=["ganinv*"]), "ganinv.conf", *groups,
                "hydra_plugins.ganinv_optuna_sweeper"])  # hydra/sweeper=optuna
