"""A sweep's search space from Hydra's override syntax, as Optuna distributions:

    key=choice(a,b,c)              categorical
    key=range(1,9,2)               integers 1, 3, 5, 7 (floats when a bound or the step is one)
    key=interval(0,0.5)            a float in [0, 0.5]
    key=tag(log,interval(1e-5,1e-2))   on a log scale
    key=tag(int,interval(1,64))    an integer

The command line's other overrides fix one value for every trial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganinv.errors import ConfigError

PRIMITIVE = (bool, int, float, str, type(None))


@dataclass
class SearchSpace:
    distributions: dict[str, Any]  # key -> optuna distribution
    fixed: list[str]  # overrides every trial takes as they are
    spelled: dict[str, dict[Any, str]]  # key -> categorical value -> the override's own spelling of it

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """One trial's overrides: the fixed ones and `key=value` for each sampled parameter."""
        return [*self.fixed, *(f"{k}={self.spell(k, v)}" for k, v in params.items())]

    def spell(self, key: str, value: Any) -> str:
        if key in self.spelled:
            return self.spelled[key][value]
        return repr(value) if isinstance(value, float) else str(value)


def search_space(lines: list[str]) -> SearchSpace:
    """The distributions of the overrides that sweep and the overrides that fix a value; a glob or an empty space is
    refused."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    distributions, fixed, spelled = {}, [], {}
    for o in OverridesParser.create().parse_overrides(lines):
        if not o.is_sweep_override():
            fixed.append(o.input_line)
            continue
        key = o.get_key_element()
        distributions[key], names = distribution(o)
        if names:
            spelled[key] = names
    if not distributions:
        raise ConfigError("the Optuna sweep has no search space: give one, e.g. 'loss.weights.id=interval(0,0.5)' "
                          "or 'method.lr=choice(1e-4,3e-4)' (or hydra.sweeper.params).")
    return SearchSpace(distributions, fixed, spelled)


def distribution(o) -> tuple[Any, dict[Any, str] | None]:
    """An override's distribution, and for a categorical one each value's spelling on the command line."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value, key = o.value(), o.get_key_element()
    tags = set(getattr(value, "tags", None) or ())
    if isinstance(value, ChoiceSweep):
        raw, spelled = list(o.sweep_iterator()), list(o.sweep_string_iterator())
        choices = raw if all(isinstance(v, PRIMITIVE) for v in raw) else spelled  # lists, dicts: by their spelling
        return CategoricalDistribution(choices), dict(zip(choices, spelled))
    if isinstance(value, RangeSweep):
        values = list(o.sweep_iterator())
        if not values:
            raise ConfigError(f"{o.input_line}: the range is empty.")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(values[0], values[-1], step=value.step), None
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step)), None
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if not low < high:
            raise ConfigError(f"{o.input_line}: an interval's start must be below its end.")
        if "int" in tags:
            return IntDistribution(int(low), int(high), log="log" in tags), None
        return FloatDistribution(float(low), float(high), log="log" in tags), None
    raise ConfigError(f"{o.input_line}: {key} is swept in a way Optuna cannot sample (a glob?): use choice(...), "
                      "range(...) or interval(...).")
