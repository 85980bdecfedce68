"""Where the Hydra config tree is: `conf/` beside the package in a source checkout, `ganinv/conf/` in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
CONF = str(next((p for p in (_PACKAGE / "conf", _PACKAGE.parent / "conf") if (p / "train.yaml").is_file()),
                _PACKAGE.parent / "conf"))
