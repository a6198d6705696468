"""What the Markdown report and the plots both need to know about trials and models."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keras_autoopt.report._values import COMPLETED, is_missing_number

FLOAT32_MODE = "float32"
"""The ``mode`` of the uncompressed model that other models' sizes are compared with."""

_MINIMIZED_WORDS = ("loss", "error", "mse", "mae", "latency", "size", "bytes")


@dataclass(frozen=True)
class TrialSummary:
    """The trials of a report, sorted by what can be shown where.

    Attributes:
        completed: Trials whose status is ``COMPLETED``, in report order.
        plotted: Completed trials with a finite score and a positive
            parameter count (the points of the trials plot).
        not_plotted: Completed trials left out of the plot (no finite score
            or no parameter count).
        not_completed: Trials with any other status (failed, invalid, ...).
        best: The best completed trial, or ``None`` if none has a finite score.
        direction: ``"max"`` or ``"min"``, how scores were compared.

    """

    completed: list[Mapping[str, Any]]
    plotted: list[Mapping[str, Any]]
    not_plotted: list[Mapping[str, Any]]
    not_completed: list[Mapping[str, Any]]
    best: Mapping[str, Any] | None
    direction: str


def is_completed(trial: Mapping[str, Any]) -> bool:
    """Return whether a trial record has the ``COMPLETED`` status (any case).

    Args:
        trial: A trial record.

    Returns:
        True if the trial completed.

    """
    return str(trial["status"]).upper() == COMPLETED


def direction(search: Mapping[str, Any]) -> str:
    """Return whether the search objective is maximized (``"max"``) or minimized.

    ``search["direction"]`` wins when present; otherwise objectives whose name
    contains ``loss``, ``error``, ``mse``, ``mae``, ``latency``, ``size`` or
    ``bytes`` are minimized and all others (``val_accuracy``, ...) maximized.

    Args:
        search: The ``search`` part of a validated report.

    Returns:
        ``"max"`` or ``"min"``.

    """
    if "direction" in search:
        return str(search["direction"])
    objective = str(search["objective"]).lower()
    return "min" if any(word in objective for word in _MINIMIZED_WORDS) else "max"


def summarize_trials(
    trials: Sequence[Mapping[str, Any]], search: Mapping[str, Any]
) -> TrialSummary:
    """Sort the trials of a validated report and find the best one.

    The best trial is, in this order of preference: the completed trial
    named by ``search["best_trial_id"]`` (optional key); the completed trial
    with a finite score whose hyperparameters equal
    ``search["best_hyperparameters"]``; the completed trial with the best
    finite score. Ties go to the first in report order.

    Args:
        trials: The ``trials`` part of a validated report.
        search: The ``search`` part of the same report.

    Returns:
        The `TrialSummary`.

    """
    completed = [trial for trial in trials if is_completed(trial)]
    not_completed = [trial for trial in trials if not is_completed(trial)]
    plotted, not_plotted = [], []
    for trial in completed:
        has_point = not is_missing_number(trial["score"]) and bool(trial["params"])
        (plotted if has_point else not_plotted).append(trial)

    way = direction(search)
    scored = [trial for trial in completed if not is_missing_number(trial["score"])]
    named = [
        trial for trial in scored if str(trial["trial_id"]) == str(search.get("best_trial_id"))
    ]
    matching = [
        trial for trial in scored if trial["hyperparameters"] == search["best_hyperparameters"]
    ]
    candidates = named or matching or scored
    best = None
    if candidates:
        sign = 1.0 if way == "max" else -1.0
        best = max(candidates, key=lambda trial: sign * float(trial["score"]))
    return TrialSummary(completed, plotted, not_plotted, not_completed, best, way)


def float32_reference(models: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Return the first model whose mode is ``float32`` (any case), if any.

    Args:
        models: Validated model records.

    Returns:
        The model record, or ``None``.

    """
    for model in models:
        if str(model["mode"]).lower() == FLOAT32_MODE:
            return model
    return None


def size_ratio(model: Mapping[str, Any], reference: Mapping[str, Any] | None) -> float:
    """Return ``model``'s size divided by the reference model's size.

    Args:
        model: A model record.
        reference: The float32 model record, or ``None``.

    Returns:
        The ratio, or NaN if there is no reference or its size is 0.

    """
    if reference is None or not reference["size_bytes"]:
        return math.nan
    return int(model["size_bytes"]) / int(reference["size_bytes"])
