"""The values `GreedyOracle` tries for one hyperparameter: grids and evenly spaced points."""

from __future__ import annotations

import math
from typing import Any

from keras_autoopt._backend import kt

_hps = kt.engine.hyperparameters

# Float candidates are rounded to this many significant digits, so that a
# log-spaced point such as 1e-4 * 10**1 is 0.001, not 0.0010000000000000002.
_SIGNIFICANT_DIGITS = 12


def _grid_size(hp: Any) -> int:
    """Return the number of grid points of a numerical hyperparameter with a step."""
    if hp.sampling == "linear":
        # The small tolerance keeps max_value when (max - min) / step is an
        # integer up to rounding (0.3 / 0.1 == 2.9999999999999996).
        return int(math.floor((hp.max_value - hp.min_value) / hp.step + 1e-9)) + 1
    return int(math.log(hp.max_value / hp.min_value, hp.step) + 1e-9) + 1


def _grid_value(hp: Any, index: int) -> float:
    """Return the ``index``-th grid point of a numerical hyperparameter with a step."""
    if hp.sampling == "linear":
        return hp.min_value + index * hp.step
    if hp.sampling == "log":
        return hp.min_value * hp.step**index
    # reverse_log: dense near max_value.
    return hp.max_value + hp.min_value - hp.min_value * hp.step**index


def _spaced_value(hp: Any, fraction: float) -> float:
    """Map ``fraction`` in [0, 1] to [min_value, max_value] by the hp's sampling."""
    low, high = hp.min_value, hp.max_value
    if hp.sampling == "linear":
        return low + fraction * (high - low)
    if hp.sampling == "log":
        return low * (high / low) ** fraction
    return high + low - low * (high / low) ** (1.0 - fraction)


def _unique(values: list[Any]) -> list[Any]:
    """Return ``values`` without repeats, keeping the first occurrence's order."""
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _candidate_values(hp: Any, count: int) -> list[Any]:
    """`GreedyOracle.candidate_values` with at most ``count`` values for a numerical hp."""
    if isinstance(hp, _hps.Fixed):
        return []
    if isinstance(hp, _hps.Boolean):
        return [False, True]
    if isinstance(hp, _hps.Choice):
        return list(hp.values)
    if not isinstance(hp, (_hps.Int, _hps.Float)):
        raise ValueError(
            f"Received: hyperparameter={hp!r}; expected a keras-tuner Choice, Boolean, "
            "Int, Float or Fixed hyperparameter."
        )
    if hp.step is not None:
        size = _grid_size(hp)
        if size <= count:
            indices = list(range(size))
        else:
            # Evenly spaced indices, halves rounded up; first and last kept.
            indices = _unique(
                [math.floor(i * (size - 1) / (count - 1) + 0.5) for i in range(count)]
            )
        raw = [_grid_value(hp, i) for i in indices]
    else:
        raw = [_spaced_value(hp, i / (count - 1)) for i in range(count)]
    if isinstance(hp, _hps.Int):
        values = [math.floor(v + 0.5) for v in raw]
    else:
        values = [float(f"{v:.{_SIGNIFICANT_DIGITS}g}") for v in raw]
    return _unique([min(max(v, hp.min_value), hp.max_value) for v in values])
