"""Ships the top-level `conf/` tree inside the wheel as `ganinv/conf/` (everything else is in pyproject.toml)."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["ganinv*"]), "ganinv.conf"], package_dir={"ganinv.conf": "conf"},
      package_data={"ganinv": ["toy/assets/*"], "ganinv.conf": ["*.yaml", "*/*.yaml", "*/*/*.yaml"]})
