"""The objective values `OptunaOracle` tells Optuna, and its summed multi-objective score."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from keras_autoopt._backend import kt


def _values_at_best_step(trial: kt.engine.trial.Trial, names: Sequence[str]) -> list[float]:
    """Each objective's value at the trial's best step (its last value if none there)."""
    values = []
    for name in names:
        at_best = [
            obs.mean() for obs in trial.metrics.get_history(name) if obs.step == trial.best_step
        ]
        value = at_best[0] if at_best else trial.metrics.get_last_value(name)
        values.append(float(value))
    return values


def _summed_score(
    trial: kt.engine.trial.Trial, objectives: Sequence[kt.Objective]
) -> tuple[float, int]:
    """keras-tuner's MultiObjective score, best over the steps all objectives share."""
    per_step: dict[int, float] = {}
    histories = {
        spec.name: {obs.step: obs.mean() for obs in trial.metrics.get_history(spec.name)}
        for spec in objectives
    }
    steps = set.intersection(*(set(h) for h in histories.values()))
    if not steps:  # No common step: the last values.
        step = max(max(h) for h in histories.values())
        last = {name: h[max(h)] for name, h in histories.items()}
        return _signed_sum(last, objectives), step
    for step in sorted(steps):
        per_step[step] = _signed_sum({name: h[step] for name, h in histories.items()}, objectives)
    finite = {s: v for s, v in per_step.items() if not math.isnan(v)}
    if not finite:
        return math.nan, min(per_step)
    best = min(finite, key=finite.get)
    return finite[best], best


def _signed_sum(values: Mapping[str, float], objectives: Sequence[kt.Objective]) -> float:
    """The values to minimize minus the values to maximize."""
    return float(
        sum(
            values[spec.name] if spec.direction == "min" else -values[spec.name]
            for spec in objectives
        )
    )
