"""Optuna's samplers behind a keras-tuner Oracle.

`OptunaOracle` is a ``kt.Oracle``: any keras-tuner ``Tuner`` (and ours) can
search with Optuna's TPE, NSGA-II, NSGA-III, quasi-Monte Carlo, Gaussian
process or random sampler, single- or multi-objective. Like every Oracle it
only proposes values; it never touches Keras.

The translation of keras-tuner hyperparameters into Optuna distributions
(and the naming of conditional ones) is in `keras_autoopt.search._optuna_space`;
the study plumbing (samplers, Optuna's logging, saved trials) in
`keras_autoopt.search._optuna_study`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from keras_autoopt._backend import kt
from keras_autoopt._checks import check_positive_int
from keras_autoopt.search._optuna_checks import _check_objective, _check_sampler, _check_space
from keras_autoopt.search._optuna_scores import _summed_score, _values_at_best_step
from keras_autoopt.search._optuna_space import _param_name, _suggest, to_optuna_distribution
from keras_autoopt.search._optuna_study import (
    _add_missing_params,
    _create_study,
    _make_sampler,
    _quiet_optuna,
    _trial_record,
)

_Status = kt.engine.trial.TrialStatus

# Names of the Optuna user attributes the oracle sets on the trials it asks.
_TRIAL_ID_ATTR = "keras_tuner_trial_id"
_DUPLICATE_ATTR = "keras_tuner_duplicate"
# Version of the "optuna" entry of ``oracle.json``.
_STATE_VERSION = 1


def _synchronized(func: Callable[..., Any]) -> Callable[..., Any]:
    """keras-tuner's ``synchronized`` (the Oracle's lock), keeping name and docstring."""
    return functools.wraps(func)(kt.synchronized(func))


class OptunaOracle(kt.Oracle):
    """A keras-tuner Oracle that asks an Optuna sampler for the values to try.

    Each keras-tuner trial is one trial of an in-memory Optuna study: the
    oracle asks Optuna for a trial, suggests the active hyperparameters of its
    space in order (see `keras_autoopt.search._optuna_space` for the translation), and tells
    Optuna the result when keras-tuner ends the trial: ``COMPLETED`` trials
    with their objective values, ``FAILED`` trials (including ``INVALID`` ones
    out of retries) with ``TrialState.FAIL``. ``INVALID`` trials that will be
    retried stay open. Proposals whose active values repeat an earlier trial
    are told as failed (user attribute ``keras_tuner_duplicate``) and asked
    again, up to 20 times, after which the oracle answers ``STOPPED`` as
    keras-tuner's oracles do when a space is exhausted.

    Single objective: Optuna gets ``trial.score``, keras-tuner's score (the
    objective's best value over the reported steps). Multi-objective (a list
    of objectives): keras-tuner scores the trial with a ``MultiObjective``,
    the sum of the values to minimize minus the sum of the values to maximize,
    and records the step where that sum was best as ``trial.best_step``;
    Optuna gets, per objective, the value that objective had at that same step
    (the mean over executions, as keras-tuner averages them), so the point
    told to Optuna is one point the model reached. When no value was reported
    at that step, the objective's last value is used. When the reported
    metrics lack keras-tuner's summed ``"multi_objective"`` entry (a custom
    tuner calling ``update_trial`` with the objectives only), the oracle
    computes the sum per step itself. The oracle also registers each
    objective's metric with that objective's direction, where keras-tuner
    would infer it from the name. ``get_best_trials`` keeps keras-tuner's
    ranking by the summed score; `get_pareto_trials` returns Optuna's
    non-dominated trials.

    Hyperparameters discovered during a trial (keras-tuner fills its space
    lazily: the first trial often runs on defaults) are added to that trial's
    Optuna parameters before it is told, so the sampler learns from it; later
    trials sample them (Optuna handles search spaces that grow).

    Persistence: ``get_state`` (written to ``oracle.json`` by keras-tuner)
    holds, besides keras-tuner's own state, every Optuna trial (state, values,
    parameters, distributions, user and system attributes), the study's
    system attributes (where NSGA and QMC keep their progress) and the map
    from keras-tuner trial ids to Optuna trial numbers. ``set_state`` rebuilds
    the in-memory study trial by trial, numbers unchanged, so a reloaded
    search goes on where it stopped. Trials running when the state was saved
    stay open in Optuna; keras-tuner runs them again under the same trial id
    and they are told when they end. A named sampler is rebuilt with seed
    ``seed + number of Optuna trials``, so a resumed search does not replay
    the random stream it started with; an Optuna sampler instance is used as
    is (its random state is not saved).

    Optuna's INFO logs (such as "A new study created in memory") are hidden:
    while the oracle calls Optuna, and only then, the ``"optuna"`` logger's
    level is raised to WARNING if it is lower, and put back afterwards. The
    level is process-wide, so INFO lines that other threads send to Optuna's
    logger at that moment are hidden too. Optuna's warnings still show.

    Distributed tuning: the oracle only overrides the Oracle API that
    keras-tuner's chief serves to its workers over gRPC, so the chief's
    oracle (and its study) drives every worker; a worker's own
    ``OptunaOracle`` stays unused (query the chief's). This mode is not
    covered by the tests. For many parallel workers, pass
    ``optuna.samplers.TPESampler(constant_liar=True)`` so that TPE accounts
    for the running trials.

    Hyperparameters that share a name under different conditions are kept
    apart in Optuna, but keras-tuner 1.4.8 itself mishandles them
    (``HyperParameters.ensure_active_values`` drops or re-samples the value):
    give conditional hyperparameters distinct names.

    Args:
        objective: A metric name, a ``kt.Objective``, or a list of
            ``kt.Objective`` (or metric names) for a multi-objective search;
            None minimizes the value ``run_trial`` returns. Directions must be
            ``"min"`` or ``"max"``.
        max_trials: Number of trials, at most; None means no limit.
        sampler: One of `SAMPLERS`: ``"tpe"``, ``"nsga2"``, ``"nsga3"``,
            ``"random"``, ``"qmc"``, ``"gp"`` (needs PyTorch), or an
            ``optuna.samplers.BaseSampler`` instance (not shared with another
            study). Named samplers use Optuna's defaults except the NSGA
            population size, ``max_trials // 5`` clipped to [4, 50] (50 with
            no ``max_trials``), so that a keras-tuner budget sees several
            generations.
        seed: Seed of a named sampler; None picks one at random (saved with
            the oracle's state).
        hyperparameters: Optional ``kt.HyperParameters`` registering (or
            overriding) hyperparameters in advance.
        allow_new_entries: Whether the hypermodel may request hyperparameters
            not in ``hyperparameters``.
        tune_new_entries: Whether such new hyperparameters are searched (else
            their default is used).
        max_retries_per_trial: Times a crashed (``INVALID``) trial is run
            again before it counts as failed.
        max_consecutive_failed_trials: Consecutive failed trials that stop
            the search.

    Raises:
        ValueError: For a bad argument, named in the message.
        ImportError: For ``sampler="gp"`` without PyTorch.
    """

    def __init__(
        self,
        objective: str | kt.Objective | Sequence[str | kt.Objective] | None = None,
        max_trials: int | None = 10,
        sampler: str | optuna.samplers.BaseSampler = "tpe",
        seed: int | None = None,
        hyperparameters: kt.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ):
        objective = _check_objective(objective)
        if max_trials is not None:
            max_trials = check_positive_int("max_trials", max_trials)
        self._sampler_name, self._custom_sampler = _check_sampler(sampler)
        if seed is not None:
            seed = check_positive_int("seed", seed, minimum=0)
        _check_space(hyperparameters, allow_new_entries, tune_new_entries)
        max_retries_per_trial = check_positive_int(
            "max_retries_per_trial", max_retries_per_trial, minimum=0
        )
        max_consecutive_failed_trials = check_positive_int(
            "max_consecutive_failed_trials", max_consecutive_failed_trials
        )
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if seed is not None:  # kt.Oracle replaces a seed of 0 by a random one.
            self.seed = self._seed_state = seed

        objectives = getattr(self.objective, "objectives", None)
        self._multi = objectives is not None
        specs = list(objectives) if self._multi else [self.objective]
        self._objective_names = tuple(spec.name for spec in specs)
        self._directions = tuple(
            "maximize" if spec.direction == "max" else "minimize" for spec in specs
        )
        # keras-tuner trial id -> Optuna trial number.
        self._trial_numbers: dict[str, int] = {}
        self._new_study(trials=(), study_system_attrs={})

    # ----------------------------------------------------------------- API

    @property
    def directions(self) -> tuple[str, ...]:
        """Optuna's directions, ``"minimize"`` or ``"maximize"``, one per objective."""
        return self._directions

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The objective names, in the order of `directions`."""
        return self._objective_names

    @property
    def study(self) -> optuna.Study:
        """The in-memory Optuna study (for Optuna's analysis and plots; do not tell it)."""
        return self._study

    def get_pareto_trials(self) -> list[kt.engine.trial.Trial]:
        """The keras-tuner trials of Optuna's best trials.

        Returns:
            The completed trials no other completed trial dominates (for a
            single objective: those with the best value), in trial order.
        """
        by_number = {number: trial_id for trial_id, number in self._trial_numbers.items()}
        return [
            self.trials[by_number[frozen.number]]
            for frozen in self._study.best_trials
            if by_number.get(frozen.number) in self.trials
        ]

    # ------------------------------------------------------ Oracle contract

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Ask Optuna for the values of a new trial.

        Args:
            trial_id: The keras-tuner id of the new trial.

        Returns:
            ``{"status": "RUNNING", "values": {...}}`` with a value for each
            active hyperparameter, or ``{"status": "STOPPED", "values": None}``
            when every proposal of 21 repeated an earlier trial.
        """
        for _ in range(self._max_collisions + 1):
            with _quiet_optuna():
                optuna_trial = self._study.ask()
                values = self._suggest_values(optuna_trial)
                if not self._duplicate(values):
                    optuna_trial.set_user_attr(_TRIAL_ID_ATTR, trial_id)
                    self._trial_numbers[trial_id] = optuna_trial.number
                    return {"status": _Status.RUNNING, "values": values}
                optuna_trial.set_user_attr(_DUPLICATE_ATTR, True)
                self._study.tell(optuna_trial, state=TrialState.FAIL)
        return {"status": _Status.STOPPED, "values": None}

    @_synchronized
    def update_trial(
        self, trial_id: str, metrics: Mapping[str, float], step: int = 0
    ) -> kt.engine.trial.Trial:
        """Record a trial's metrics, as ``kt.Oracle.update_trial``.

        For a multi-objective search, each objective's metric is first
        registered with that objective's direction.

        Args:
            trial_id: The keras-tuner trial id.
            metrics: Metric names to values.
            step: The step (epoch) of the values.

        Returns:
            The trial.
        """
        if self._multi:
            tracker = self.trials[trial_id].metrics
            for spec in self.objective.objectives:
                if spec.name in metrics and not tracker.exists(spec.name):
                    tracker.register(spec.name, direction=spec.direction)
        return super().update_trial(trial_id, metrics, step=step)

    @_synchronized
    def end_trial(self, trial: kt.engine.trial.Trial) -> None:
        """End a trial as ``kt.Oracle.end_trial``, then tell Optuna its result.

        Args:
            trial: The trial, its status ``COMPLETED``, ``INVALID`` or
                ``FAILED``.
        """
        trial_id = trial.trial_id
        try:
            super().end_trial(trial)
        except BaseException:
            # The search stops (too many failures): keep the study consistent.
            with contextlib.suppress(Exception):
                self._tell(trial_id)
            raise
        if self._tell(trial_id):
            self.save()

    def score_trial(self, trial: kt.engine.trial.Trial) -> None:
        """Score a completed trial as keras-tuner does.

        For a multi-objective search whose reported metrics lack the summed
        ``"multi_objective"`` entry, the sum is computed per step from the
        objectives.

        Args:
            trial: A completed trial.
        """
        if not self._multi or trial.metrics.exists(self.objective.name):
            super().score_trial(trial)
            return
        trial.score, trial.best_step = _summed_score(trial, self.objective.objectives)

    def get_state(self) -> dict[str, Any]:
        """keras-tuner's Oracle state plus what rebuilds the Optuna study.

        Returns:
            A JSON-serializable dict.
        """
        state = super().get_state()
        state["optuna"] = {
            "version": _STATE_VERSION,
            "sampler": self._sampler_name or type(self._custom_sampler).__name__,
            "directions": list(self._directions),
            "objective_names": list(self._objective_names),
            "trial_numbers": dict(self._trial_numbers),
            "study_system_attrs": self._storage.get_study_system_attrs(self._study_id),
            "trials": [_trial_record(t) for t in self._study.get_trials(deepcopy=False)],
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore keras-tuner's Oracle state and rebuild the Optuna study.

        Args:
            state: A dict from `get_state`.

        Raises:
            KeyError: If the state has no Optuna study (written by another
                oracle); ``kt.Oracle.reload`` reports it as a project it cannot
                reload.
            ValueError: If the saved study optimizes other directions than
                this oracle's objective.
        """
        saved = state["optuna"]
        if tuple(saved["directions"]) != self._directions:
            raise ValueError(
                f"Received: a saved search with directions={saved['directions']} "
                f"(objectives {saved['objective_names']}); expected "
                f"directions={list(self._directions)} for objective={self.objective}. "
                "Use the saved objective, another project_name or overwrite=True."
            )
        super().set_state(state)
        self._trial_numbers = {str(k): int(v) for k, v in saved["trial_numbers"].items()}
        self._new_study(saved["trials"], saved["study_system_attrs"])
        self._reconcile()

    # ------------------------------------------------------------ helpers

    def _new_study(
        self, trials: Sequence[Mapping[str, Any]], study_system_attrs: Mapping[str, Any]
    ) -> None:
        if self._custom_sampler is not None:
            sampler = self._custom_sampler
        else:
            sampler = _make_sampler(self._sampler_name, self.seed + len(trials), self.max_trials)
        self._storage, self._study, self._study_id = _create_study(
            sampler, self._directions, trials, study_system_attrs
        )

    def _reconcile(self) -> None:
        """Close the Optuna trials left open whose keras-tuner trial is over."""
        open_numbers = {
            t.number for t in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        for trial_id, number in self._trial_numbers.items():
            open_numbers.discard(number)
            if trial_id in self.trials:
                self._tell(trial_id)  # a no-op unless the trial is over
        with _quiet_optuna():
            for number in sorted(open_numbers):  # asked, never given to keras-tuner
                self._study.tell(number, state=TrialState.FAIL)

    def _suggest_values(self, optuna_trial: optuna.Trial) -> dict[str, Any]:
        hps = kt.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = _suggest(
                    optuna_trial, _param_name(hp), to_optuna_distribution(hp)
                )
        return hps.values

    def _open_optuna_trial(self, trial_id: str) -> int | None:
        """The storage id of the trial's Optuna trial if it is still running."""
        number = self._trial_numbers.get(trial_id)
        if number is None:
            return None
        storage_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
        if self._storage.get_trial(storage_id).state != TrialState.RUNNING:
            return None
        return storage_id

    def _tell(self, trial_id: str) -> bool:
        """Tell Optuna the result of a keras-tuner trial that is over.

        Returns:
            Whether Optuna was told (False for a trial still running or to be
            retried, or already told).
        """
        storage_id = self._open_optuna_trial(trial_id)
        trial = self.trials.get(trial_id)
        if storage_id is None or trial is None:
            return False
        number = self._trial_numbers[trial_id]
        with _quiet_optuna():
            if trial.status == _Status.COMPLETED:
                _add_missing_params(
                    self._storage, storage_id, self.hyperparameters.space, trial.hyperparameters
                )
                self._study.tell(number, self._objective_values(trial))
            elif trial.status == _Status.FAILED:
                self._study.tell(number, state=TrialState.FAIL)
            else:
                return False
        return True

    def _objective_values(self, trial: kt.engine.trial.Trial) -> list[float]:
        if not self._multi:
            return [float(trial.score)]
        return _values_at_best_step(trial, self._objective_names)


__all__ = ["OptunaOracle"]
