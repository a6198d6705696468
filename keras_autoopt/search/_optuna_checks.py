"""Argument checks of `OptunaOracle`: objectives, sampler, search space."""

from __future__ import annotations

import importlib.util
from typing import Any

import optuna

from keras_autoopt._backend import kt
from keras_autoopt.search._optuna_study import SAMPLERS


def _show(value: Any) -> str:
    """``repr`` for messages, with keras-tuner objectives shown by their ``str``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return str(value) if isinstance(value, kt.Objective) else repr(value)


def _check_objective(objective: Any) -> Any:
    """Return ``objective`` in the form ``kt.Oracle`` accepts, or raise."""
    if objective is None:
        return None
    if isinstance(objective, (list, tuple)):
        if not objective:
            raise ValueError(
                f"Received: objective={_show(objective)}; expected a non-empty list of "
                "kt.Objective (or metric names)."
            )
        checked = [_check_one_objective(objective, item) for item in objective]
        names = [item if isinstance(item, str) else item.name for item in checked]
        if len(set(names)) != len(names):
            raise ValueError(
                f"Received: objective={_show(objective)}; expected objectives with distinct "
                f"names, got {names}."
            )
        return checked
    if hasattr(objective, "objectives"):  # a keras-tuner MultiObjective
        for item in objective.objectives:
            _check_one_objective(objective, item)
        return objective
    return _check_one_objective(objective, objective)


def _check_one_objective(received: Any, item: Any) -> Any:
    if isinstance(item, str):
        if kt.engine.metrics_tracking.infer_metric_direction(item) is None:
            raise ValueError(
                f"Received: objective={_show(received)}; expected a metric name whose direction "
                f"keras-tuner can infer (e.g. 'val_loss', 'val_accuracy'), or "
                f"kt.Objective({item!r}, direction='min' or 'max')."
            )
        return item
    if isinstance(item, kt.Objective):
        if not isinstance(item.name, str) or not item.name:
            raise ValueError(
                f"Received: objective={_show(received)}; expected objectives with a non-empty "
                "string name."
            )
        if item.direction not in ("min", "max"):
            raise ValueError(
                f"Received: objective={_show(received)}; expected each objective's direction "
                f"to be 'min' or 'max', got {item.direction!r} for {item.name!r}."
            )
        return item
    raise ValueError(
        f"Received: objective={_show(received)}; expected None, a metric name, a kt.Objective "
        "or a list of kt.Objective (multi-objective)."
    )


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"Received: {name}={value!r}; expected True or False.")
    return value


def _check_sampler(sampler: Any) -> tuple[str | None, optuna.samplers.BaseSampler | None]:
    """The sampler's name (for a named sampler) and instance (for an Optuna sampler), or raise."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return None, sampler
    if isinstance(sampler, str) and sampler in SAMPLERS:
        if sampler == "gp" and importlib.util.find_spec("torch") is None:
            raise ImportError(
                "Received: sampler='gp'; Optuna's GPSampler needs PyTorch, which is "
                "not installed (pip install torch). Expected another sampler of "
                f"{SAMPLERS} or PyTorch."
            )
        return sampler, None
    raise ValueError(
        f"Received: sampler={sampler!r}; expected one of {SAMPLERS} or an optuna "
        "sampler (an optuna.samplers.BaseSampler instance)."
    )


def _check_space(hyperparameters: Any, allow_new_entries: Any, tune_new_entries: Any) -> None:
    """Raise unless the search space arguments fit together."""
    if hyperparameters is not None and not isinstance(hyperparameters, kt.HyperParameters):
        raise ValueError(
            f"Received: hyperparameters={hyperparameters!r}; expected None or a kt.HyperParameters."
        )
    _check_bool("allow_new_entries", allow_new_entries)
    _check_bool("tune_new_entries", tune_new_entries)
    if hyperparameters is None:
        for name, value in (
            ("allow_new_entries", allow_new_entries),
            ("tune_new_entries", tune_new_entries),
        ):
            if not value:
                raise ValueError(
                    f"Received: {name}=False and hyperparameters=None; expected the "
                    "search space in `hyperparameters`."
                )
