"""The in-memory Optuna study behind `OptunaOracle`: samplers, quiet logging, saved trials."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from keras_autoopt._backend import kt
from keras_autoopt.search._optuna_space import _contains, _param_name, to_optuna_distribution

#: Sampler names accepted by `OptunaOracle`.
SAMPLERS = ("tpe", "nsga2", "nsga3", "random", "qmc", "gp")


def _population_size(max_trials: int | None) -> int:
    """NSGA population: about five generations in ``max_trials``, Optuna's 50 at most."""
    if max_trials is None:
        return 50
    return min(50, max(4, max_trials // 5))


def _make_sampler(name: str, seed: int, max_trials: int | None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            population_size=_population_size(max_trials), seed=seed
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # NSGA-III and QMC are "experimental" in Optuna: the warning concerns their
    # constructor arguments, which are this module's to keep up to date, not
    # the user's (who chose them by name).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "nsga3":
            return optuna.samplers.NSGAIIISampler(
                population_size=_population_size(max_trials), seed=seed
            )
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed)
        return optuna.samplers.GPSampler(seed=seed)


class _QuietOptuna:
    """Raise Optuna's log level to WARNING while the oracle calls Optuna.

    Optuna logs one INFO line per created study (and more from ``optimize``,
    which the oracle does not use). The level of the ``"optuna"`` logger is
    process-wide, so this is a counted context: the first entry raises the
    level (only if it is below WARNING), the last exit restores the level that
    was there. Nothing changes outside the oracle's calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                level = optuna.logging.get_verbosity()
                self._saved = level if level < optuna.logging.WARNING else None
                if self._saved is not None:
                    optuna.logging.set_verbosity(optuna.logging.WARNING)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._saved is not None:
                    optuna.logging.set_verbosity(self._saved)
                    self._saved = None


_quiet_optuna = _QuietOptuna()


def _create_study(
    sampler: optuna.samplers.BaseSampler,
    directions: Sequence[str],
    trials: Sequence[Mapping[str, Any]],
    study_system_attrs: Mapping[str, Any],
) -> tuple[optuna.storages.InMemoryStorage, optuna.Study, int]:
    """A new in-memory study holding the saved ``trials`` (records of `_trial_record`).

    Returns:
        The storage, the study and the study's id in the storage.
    """
    storage = optuna.storages.InMemoryStorage()
    with _quiet_optuna():
        study = optuna.create_study(storage=storage, sampler=sampler, directions=list(directions))
        study_id = storage.get_study_id_from_name(study.study_name)
        for key, value in study_system_attrs.items():
            storage.set_study_system_attr(study_id, key, value)
        for number, record in enumerate(trials):
            if record["number"] != number:
                raise ValueError(
                    f"Received: saved Optuna trial number {record['number']} at "
                    f"position {number}; expected the trials in number order."
                )
            study.add_trial(_frozen_trial(record))
    return storage, study, study_id


def _add_missing_params(
    storage: optuna.storages.BaseStorage,
    storage_id: int,
    space: Sequence[Any],
    hyperparameters: kt.HyperParameters,
) -> None:
    """Give the Optuna trial the values of hyperparameters it was not asked for.

    These are hyperparameters that the space gained while the trial ran
    (their default values were used), or that a saved study lacks.

    Args:
        storage: The study's storage.
        storage_id: The storage id of the Optuna trial.
        space: The oracle's hyperparameters (``HyperParameters.space``).
        hyperparameters: The keras-tuner trial's hyperparameters.
    """
    params = storage.get_trial(storage_id).params
    values = hyperparameters.values
    for hp in space:
        name = _param_name(hp)
        if name in params or hp.name not in values or not hyperparameters.is_active(hp):
            continue
        distribution = to_optuna_distribution(hp)
        value = values[hp.name]
        if not _contains(distribution, value):
            continue
        # Refused when the study already has another distribution kind
        # under that name; the sampler then learns without this value.
        with contextlib.suppress(ValueError):
            storage.set_trial_param(
                storage_id, name, distribution.to_internal_repr(value), distribution
            )


def _trial_record(frozen: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": frozen.number,
        "state": frozen.state.name,
        "values": list(frozen.values) if frozen.values is not None else None,
        "params": dict(frozen.params),
        "distributions": {
            name: optuna.distributions.distribution_to_json(d)
            for name, d in frozen.distributions.items()
        },
        "user_attrs": dict(frozen.user_attrs),
        "system_attrs": dict(frozen.system_attrs),
    }


def _frozen_trial(record: Mapping[str, Any]) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        state=TrialState[record["state"]],
        values=record["values"],
        params=record["params"],
        distributions={
            name: optuna.distributions.json_to_distribution(d)
            for name, d in record["distributions"].items()
        },
        user_attrs=record["user_attrs"],
        system_attrs=record["system_attrs"],
    )


__all__ = ["SAMPLERS"]
