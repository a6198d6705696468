"""keras-tuner hyperparameters <-> Optuna distributions, for `OptunaOracle`.

How keras-tuner hyperparameters become Optuna distributions
(`to_optuna_distribution`; `from_optuna_distribution` goes back):

=========================================  ===========================================
keras-tuner                                Optuna
=========================================  ===========================================
``Int``, linear, ``step``                  ``IntDistribution(low, high', step)``
``Int``, log, no step                      ``IntDistribution(low, high, log=True)``
``Float``, linear, no step                 ``FloatDistribution(low, high)``
``Float``, linear, ``step``                ``FloatDistribution(low, high', step)``
``Float``, log, no step                    ``FloatDistribution(low, high, log=True)``
``Int``/``Float``, log, ``step``           ``CategoricalDistribution(hp.values)``
``Int``/``Float``, reverse_log, ``step``   ``CategoricalDistribution(hp.values)``
``Int``/``Float``, reverse_log, no step    linear ``IntDistribution``/``FloatDistribution``
``Choice`` (ordered or not)                ``CategoricalDistribution(values)``
``Boolean``                                ``CategoricalDistribution((False, True))``
``Fixed``                                  ``CategoricalDistribution((value,))``
=========================================  ===========================================

``high'`` is the largest grid point ``low + k * step <= high`` (Optuna would
otherwise move it itself, with a warning); it is computed in decimal, so
``Float(0, 1, step=0.1)`` includes 1.0 as keras-tuner's documentation says.
A multiplicative ``step`` (log scales) has no Optuna counterpart, so those
finite grids become categorical. ``reverse_log`` (a log scale mirrored at the
top of the range, dense near ``max_value``) has no Optuna counterpart either:
without a step it is searched on a linear scale, the samplers then learn
where the good values are; with a step it is the categorical grid. Optuna
treats categorical choices as unordered, so ``Choice(ordered=...)`` is not
kept: `from_optuna_distribution` gives keras-tuner's default (numbers
ordered, strings not).

Conditional hyperparameters (``hp.conditional_scope``) are sampled
define-by-run: the oracle asks Optuna for a trial and suggests the
hyperparameters of its space in order, only those active given the values
chosen so far (as keras-tuner's random search does). Inactive ones get no
value, which is keras-tuner's own contract (``HyperParameters.values`` holds
active values only; the model sees ``None``). A conditional hyperparameter
is an Optuna parameter named ``"<name> [<parent>=<v1>|<v2>, ...]"``, so that
hyperparameters sharing a name under different conditions stay apart.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from keras_autoopt._backend import kt

_hps = kt.engine.hyperparameters

_CHOICE_TYPES = (bool, int, float, str)


def to_optuna_distribution(hp: _hps.HyperParameter) -> BaseDistribution:
    """Translate a keras-tuner hyperparameter into an Optuna distribution.

    The values Optuna samples from the distribution are values of the
    hyperparameter; the module docstring has the table, including the lossy
    cases (multiplicative steps, ``reverse_log``, ``Choice.ordered``).

    Args:
        hp: A keras-tuner ``Int``, ``Float``, ``Choice``, ``Boolean`` or
            ``Fixed`` hyperparameter.

    Returns:
        The Optuna distribution.

    Raises:
        ValueError: If ``hp`` is not one of those five types.
    """
    if isinstance(hp, _hps.Fixed):
        return CategoricalDistribution((hp.value,))
    if isinstance(hp, _hps.Boolean):
        return CategoricalDistribution((False, True))
    if isinstance(hp, _hps.Choice):
        return CategoricalDistribution(tuple(hp.values))
    if isinstance(hp, _hps.Int):
        return _int_distribution(hp)
    if isinstance(hp, _hps.Float):
        return _float_distribution(hp)
    raise ValueError(
        f"Received: hp={hp!r}; expected a keras-tuner Int, Float, Choice, Boolean or "
        "Fixed hyperparameter."
    )


def from_optuna_distribution(
    name: str,
    distribution: BaseDistribution,
    *,
    default: Any = None,
    conditions: Sequence[Any] | None = None,
) -> _hps.HyperParameter:
    """Translate an Optuna distribution into a keras-tuner hyperparameter.

    ``FloatDistribution`` gives ``Float``, ``IntDistribution`` gives ``Int``
    (``log=True`` gives ``sampling="log"``), a categorical distribution gives
    ``Fixed`` (one choice), ``Boolean`` (the choices ``False`` and ``True``)
    or ``Choice``.

    Args:
        name: Name of the hyperparameter.
        distribution: The Optuna distribution.
        default: Default value of the hyperparameter; None keeps keras-tuner's
            default (the lower bound, the first choice, False). Not used for
            ``Fixed``.
        conditions: keras-tuner conditions (``Parent``) that make the
            hyperparameter active; None means always active.

    Returns:
        The keras-tuner hyperparameter.

    Raises:
        ValueError: If the distribution is of another type, or categorical
            with choices that are not all of one type among bool, int, float
            and str (keras-tuner's ``Choice`` accepts nothing else).
    """
    conditions = list(conditions) if conditions else None
    if isinstance(distribution, FloatDistribution):
        return _hps.Float(
            name,
            min_value=distribution.low,
            max_value=distribution.high,
            step=distribution.step,
            sampling="log" if distribution.log else "linear",
            default=default,
            conditions=conditions,
        )
    if isinstance(distribution, IntDistribution):
        return _hps.Int(
            name,
            min_value=distribution.low,
            max_value=distribution.high,
            step=None if distribution.log else distribution.step,
            sampling="log" if distribution.log else "linear",
            default=default,
            conditions=conditions,
        )
    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        kinds = {type(choice) for choice in choices}
        if len(kinds) != 1 or not kinds <= set(_CHOICE_TYPES):
            raise ValueError(
                f"Received: distribution={distribution!r}; expected categorical choices "
                "all of one type among bool, int, float and str."
            )
        if len(choices) == 1:
            return _hps.Fixed(name, choices[0], conditions=conditions)
        if kinds == {bool}:
            return _hps.Boolean(
                name,
                default=bool(default) if default is not None else False,
                conditions=conditions,
            )
        return _hps.Choice(name, choices, default=default, conditions=conditions)
    raise ValueError(
        f"Received: distribution={distribution!r}; expected an Optuna FloatDistribution, "
        "IntDistribution or CategoricalDistribution."
    )


def _int_distribution(hp: _hps.Int) -> BaseDistribution:
    if hp.sampling == "log" and hp.step is None:
        return IntDistribution(hp.min_value, hp.max_value, log=True)
    if hp.sampling == "linear" or hp.step is None:  # reverse_log without a step: linear
        step = int(hp.step or 1)
        high = hp.min_value + (hp.max_value - hp.min_value) // step * step
        return IntDistribution(hp.min_value, high, step=step)
    return CategoricalDistribution(_grid(hp, is_int=True))


def _float_distribution(hp: _hps.Float) -> BaseDistribution:
    if hp.step is None:
        return FloatDistribution(hp.min_value, hp.max_value, log=hp.sampling == "log")
    if hp.sampling == "linear":
        high = _grid_high(hp.min_value, hp.max_value, hp.step)
        return FloatDistribution(hp.min_value, high, step=hp.step)
    return CategoricalDistribution(_grid(hp, is_int=False))


def _grid(hp: _hps.Int | _hps.Float, *, is_int: bool) -> tuple[int | float, ...]:
    """The finite grid of a hyperparameter with a multiplicative step, ascending."""
    values = (int(round(v)) if is_int else float(v) for v in hp.values)
    return tuple(sorted(set(values)))


def _grid_high(low: float, high: float, step: float) -> float:
    """The largest ``low + k * step <= high``, computed in decimal."""
    d_low, d_high, d_step = (decimal.Decimal(str(v)) for v in (low, high, step))
    return float(d_low + (d_high - d_low) // d_step * d_step)


def _param_name(hp: _hps.HyperParameter) -> str:
    """The Optuna parameter name of a hyperparameter (its conditions included)."""
    if not hp.conditions:
        return hp.name
    parts = []
    for condition in hp.conditions:
        config = condition.get_config()
        if set(config) == {"name", "values"}:
            parts.append(f"{config['name']}={'|'.join(str(v) for v in config['values'])}")
        else:  # pragma: no cover - keras-tuner 1.4 only has ``Parent`` conditions
            parts.append(json.dumps(config, sort_keys=True, default=str))
    return f"{hp.name} [{', '.join(parts)}]"


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    """Suggest a value of ``distribution`` with Optuna's public ``suggest_*`` API."""
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        suggest = (
            trial.suggest_float if isinstance(distribution, FloatDistribution)
            else trial.suggest_int
        )
        return suggest(
            name, distribution.low, distribution.high, step=distribution.step,
            log=distribution.log,
        )
    return trial.suggest_categorical(name, distribution.choices)


def _contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is a possible value of ``distribution``."""
    if isinstance(distribution, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in distribution.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(distribution, IntDistribution) and int(value) != value:
        return False
    return distribution.low <= value <= distribution.high


__all__ = ["from_optuna_distribution", "to_optuna_distribution"]
