"""The records of the ``pareto`` key of a run report: a multi-objective search's result."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, model_validator

from keras_autoopt.report._records_fields import (
    DirectionName,
    Flag,
    FreeDict,
    NonEmptyStr,
    OptFlag,
    OptStr,
    Record,
    Seconds,
    TrialStatusName,
    check_unique,
    checked,
    invariant_error,
    list_of,
    named_map,
    one_of,
)
from keras_autoopt.report._values import COMPLETED, describe, is_real, key_path

#: {metric name: value, NaN allowed, or None}.
Metrics = named_map(
    checked(float | None, lambda v: v is None or is_real(v), "a float or None (NaN allowed)",
            float),
    "metric names as str",
)
#: {limit name: a number >= 0, or None for no limit}.
Constraints = named_map(
    checked(
        float | None,
        lambda v: v is None or (is_real(v) and math.isfinite(v) and v >= 0),
        "a finite, non-negative number or None (no limit)",
        float,
    ),
    "limit names as str",
    "a dict {limit name: number or None}",
)
#: The reference point of the hypervolume: one finite value per objective.
Reference = checked(
    list[float],
    lambda v: isinstance(v, (list, tuple)) and all(is_real(x) and math.isfinite(x) for x in v),
    "a list of finite floats, one per objective",
    lambda v: [float(x) for x in v],
)


class ParetoObjective(Record):
    """One objective of the front: a metric name (unique) and its direction."""

    name: NonEmptyStr
    direction: one_of(DirectionName)


class ParetoTrial(Record):
    """One trial of a multi-objective search.

    ``rejected``: rejected before training; ``reason``: why it was rejected,
    failed or is infeasible; ``feasible``: None when not measured;
    ``metrics``: its figures (``val_accuracy`` as a fraction, ``gzip_bytes``,
    ``size_bytes``, ``latency_us``, ``params``, ...; any may be missing).
    """

    trial_id: NonEmptyStr
    status: one_of(TrialStatusName, any_case=True)
    rejected: Flag
    reason: OptStr
    feasible: OptFlag
    metrics: Metrics
    hyperparameters: FreeDict


def _front_id(value: Any) -> Any:
    if isinstance(value, str):
        return value
    raise invariant_error(
        lambda path: (
            f"Received: {path}={describe(value)}; expected the trial_id of a trial in "
            f"{path.rsplit('[', 2)[0]}['trials']."
        )
    )


#: The objectives of the front, at least one.
Objectives = list_of(
    ParetoObjective,
    "a non-empty list of {'name': str, 'direction': 'max' | 'min'}",
    non_empty=True,
)
#: The ids of the trials on the front.
Front = list_of(Annotated[str, BeforeValidator(_front_id)], "a list of trial ids (str)")


class Pareto(Record):
    """The result of a multi-objective search (the ``pareto`` key of a run report).

    ``front`` holds the ids of the trials on the Pareto front of
    ``objectives`` (each a COMPLETED, feasible, not rejected trial);
    ``hypervolume`` is the front's, measured from ``reference`` (one finite
    value per objective). ``constraints``: {limit name (``max_params``,
    ``max_size_bytes``, ``max_latency_ms``, ``min_accuracy``, ...): a number
    >= 0, or None for no limit}; ``target``: the device target's definition
    (`Target.get_config`), absent in reports written before targets existed.
    """

    objectives: Objectives
    oracle: NonEmptyStr
    constraints: Constraints
    trials: list_of(ParetoTrial)
    front: Front
    hypervolume: Seconds
    reference: Reference
    target: FreeDict | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> Pareto:
        names = self._unique("objectives", [o.name for o in self.objectives], "name",
                             "objective name")
        ids = self._unique("trials", [t.trial_id for t in self.trials], "trial_id", "trial id")
        seen: set[str] = set()
        for index, trial_id in enumerate(self.front):
            self._check_front_id(index, trial_id, ids, seen)
        if len(self.reference) != len(names):
            reference = self.reference
            raise invariant_error(
                lambda path: (
                    f"Received: {key_path(path, 'reference')}={describe(reference)} with "
                    f"{len(reference)} value(s); expected one value per objective "
                    f"({len(names)}: {names})."
                )
            )
        return self

    @staticmethod
    def _unique(field: str, values: list[str], key: str, what: str) -> list[str]:
        def item_path(path: str, index: int) -> str:
            return key_path(key_path(key_path(path, field), index), key)

        check_unique(values, item_path, what)
        return values

    def _check_front_id(self, index: int, trial_id: str, ids: list[str], seen: set[str]) -> None:
        def id_path(path: str) -> str:
            return key_path(key_path(path, "front"), index)

        if trial_id not in ids:
            raise invariant_error(
                lambda path: (
                    f"Received: {id_path(path)}={describe(trial_id)}; expected the trial_id of a "
                    f"trial in {key_path(path, 'trials')}."
                )
            )
        if trial_id in seen:
            raise invariant_error(
                lambda path: (
                    f"Received: {id_path(path)}={describe(trial_id)}; expected each front trial "
                    "id once."
                )
            )
        seen.add(trial_id)
        trial = self.trials[ids.index(trial_id)]
        if trial.status != COMPLETED or trial.feasible is not True or trial.rejected:
            raise invariant_error(
                lambda path: (
                    f"Received: {id_path(path)}={trial_id!r}, a trial with "
                    f"status={trial.status!r}, feasible={trial.feasible!r} and "
                    f"rejected={bool(trial.rejected)!r}; expected the id of a {COMPLETED}, "
                    "feasible, not rejected trial (only those can be on the front)."
                )
            )
