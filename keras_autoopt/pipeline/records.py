"""What a search hands to the rest of the pipeline: `SearchOutcome` and its trial records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keras_autoopt._backend import keras, kt
from keras_autoopt.search import INFEASIBLE_PREFIX, failure_reason, is_rejected

#: A trial's score or parameter count, from the trial and its last metric values.
TrialValue = Callable[[Any, dict[str, float]], Any]


@dataclass(frozen=True)
class SearchOutcome:
    """What a search strategy produced, whichever it was.

    Attributes:
        tuner: The tuner (its oracle holds every trial).
        tuner_name: The report's ``search.tuner`` (``"random"``, ``"deployable/nsga2"``, ...).
        objective: The metric that ranks the trials (``search.objective``).
        direction: ``"max"`` or ``"min"``, for ``objective``.
        refit: Whether ``best_model`` was trained afresh on train + validation.
        records: One report record per trial (`trial_records`).
        best_trial_id: The best trial's id.
        best_score: The best trial's score (its ``objective`` value).
        best_hyperparameters: The best trial's hyperparameter values.
        best_model: The model that is saved, exported and reported.
        trial_model: Loads the best trial's own model (trained on the train split
            only) for `auto_compress`; called only when compression is configured.
        pareto: The report's ``pareto`` section (multi-objective search), or None.
        front_rows: The report's model rows of the Pareto front's own TFLite files.
        wall_time_s: Search time of this run.
        done_before: Trials completed by an earlier run (resume).
    """

    tuner: kt.Tuner
    tuner_name: str
    objective: str
    direction: str
    refit: bool
    records: list[dict[str, Any]]
    best_trial_id: str
    best_score: float
    best_hyperparameters: dict[str, Any]
    best_model: keras.Model
    trial_model: Callable[[], keras.Model]
    wall_time_s: float
    done_before: int
    pareto: dict[str, Any] | None = None
    front_rows: list[dict[str, Any]] = field(default_factory=list)


def completed_trials(tuner: kt.Tuner) -> int:
    """How many of the tuner's trials are completed (by this run or an earlier one)."""
    return sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())


def status_of(trial) -> str:
    """keras-tuner's status of ``trial`` as a plain string (``"COMPLETED"``, ``"FAILED"``, ...)."""
    return str(getattr(trial.status, "value", trial.status))


def _last_metrics(tuner: kt.Tuner, trial) -> dict[str, float]:
    return {name: float(trial.metrics.get_last_value(name))
            for name in trial.metrics.metrics if trial.metrics.exists(name)
            and name != tuner.oracle.objective.name}


def _recorded(trial, name: str) -> float | None:
    """The trial's last value of metric ``name``, or None if it recorded none."""
    if not trial.metrics.exists(name):
        return None
    value = trial.metrics.get_last_value(name)
    return None if value is None else float(value)


def _message(trial, completed: bool, pareto: bool) -> str | None:
    if is_rejected(trial):
        return trial.message.split("Rejected before training:", 1)[-1].strip().splitlines()[0]
    if completed and pareto:
        message = trial.message or ""
        return message.removeprefix(INFEASIBLE_PREFIX).strip() or None \
            if message.startswith(INFEASIBLE_PREFIX) else None
    return failure_reason(trial.message)


def trial_records(tuner: kt.Tuner, *, score: TrialValue, params: TrialValue,
                  pareto: bool = False) -> list[dict[str, Any]]:
    """One report record per trial: the one builder of ``report["trials"]``.

    Every record has the same keys with the same meaning, whichever the search:

    - ``trial_id``, ``status`` (keras-tuner's), ``hyperparameters``;
    - ``score``: the value the search ranked the trial by, its validation
      accuracy (``score``; None for a trial that produced none);
    - ``params``: the model's parameter count, None unless ``COMPLETED``;
    - ``message``: why the trial failed or was rejected, in one line. A
      multi-objective record has None for a completed trial; a single-objective
      one keeps the reason of an attempt that failed before a retry completed;
    - ``train_s`` and ``val_f1``: the wall time of the trial's training and
      compression (seconds) and the macro F1 of its exported model on the
      validation split, as the trial recorded them; None when it did not (a
      single-objective search measures neither).

    With ``pareto`` (a multi-objective search) the record also has ``rejected``,
    ``reason`` (the ``message``), ``feasible`` (None unless completed) and
    ``metrics`` (the trial's last values, the oracle's own objective left out):
    the fields of the report's ``pareto.trials``.

    Args:
        tuner: The tuner whose oracle holds the trials.
        score: ``score(trial, metrics)``: the trial's score, for any trial.
        params: ``params(trial, metrics)``: the parameter count of a completed trial.
        pareto: Add the multi-objective fields.
    """
    records = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        status = status_of(trial)
        completed = status == "COMPLETED"
        metrics = _last_metrics(tuner, trial) if pareto else {}
        message = _message(trial, completed, pareto)
        record = {
            "trial_id": str(trial_id),
            "status": status,
            "score": score(trial, metrics),
            "params": params(trial, metrics) if completed else None,
            "hyperparameters": dict(trial.hyperparameters.values),
            "message": message,
            "train_s": _recorded(trial, "train_s"),
            "val_f1": _recorded(trial, "val_f1"),
        }
        if pareto:
            record.update({
                "rejected": is_rejected(trial),
                "reason": message,
                "feasible": (metrics.get("feasible", 1.0) >= 0.5) if completed else None,
                "metrics": metrics,
            })
        records.append(record)
    return records
