"""Optuna's samplers behind a keras-tuner Oracle.

`OptunaOracle` is a ``kt.Oracle``: any keras-tuner ``Tuner`` (and ours) can
search with Optuna's TPE, NSGA-II, NSGA-III, quasi-Monte Carlo, Gaussian
process or random sampler, single- or multi-objective. Like every Oracle it
only proposes values; it never touches Keras.

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

import contextlib
import decimal
import functools
import importlib.util
import json
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from keras_autoopt._backend import kt
from keras_autoopt._checks import check_positive_int

_hps = kt.engine.hyperparameters
_Status = kt.engine.trial.TrialStatus

#: Sampler names accepted by `OptunaOracle`.
SAMPLERS = ("tpe", "nsga2", "nsga3", "random", "qmc", "gp")

# Names of the Optuna user attributes the oracle sets on the trials it asks.
_TRIAL_ID_ATTR = "keras_tuner_trial_id"
_DUPLICATE_ATTR = "keras_tuner_duplicate"
# Version of the "optuna" entry of ``oracle.json``.
_STATE_VERSION = 1
_CHOICE_TYPES = (bool, int, float, str)


# --------------------------------------------------------------------------
# Hyperparameter <-> distribution translation
# --------------------------------------------------------------------------


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
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name,
            distribution.low,
            distribution.high,
            step=distribution.step,
            log=distribution.log,
        )
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name,
            distribution.low,
            distribution.high,
            step=distribution.step,
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


# --------------------------------------------------------------------------
# Samplers and Optuna's logging
# --------------------------------------------------------------------------


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


def _synchronized(func: Callable[..., Any]) -> Callable[..., Any]:
    """keras-tuner's ``synchronized`` (the Oracle's lock), keeping name and docstring."""
    return functools.wraps(func)(kt.synchronized(func))


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The Oracle
# --------------------------------------------------------------------------


class OptunaOracle(kt.Oracle):
    """A keras-tuner Oracle that asks an Optuna sampler for the values to try.

    Each keras-tuner trial is one trial of an in-memory Optuna study: the
    oracle asks Optuna for a trial, suggests the active hyperparameters of its
    space in order (see the module docstring for the translation), and tells
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
        if isinstance(sampler, optuna.samplers.BaseSampler):
            self._sampler_name: str | None = None
            self._custom_sampler: optuna.samplers.BaseSampler | None = sampler
        elif isinstance(sampler, str) and sampler in SAMPLERS:
            if sampler == "gp" and importlib.util.find_spec("torch") is None:
                raise ImportError(
                    "Received: sampler='gp'; Optuna's GPSampler needs PyTorch, which is "
                    "not installed (pip install torch). Expected another sampler of "
                    f"{SAMPLERS} or PyTorch."
                )
            self._sampler_name = sampler
            self._custom_sampler = None
        else:
            raise ValueError(
                f"Received: sampler={sampler!r}; expected one of {SAMPLERS} or an optuna "
                "sampler (an optuna.samplers.BaseSampler instance)."
            )
        if seed is not None:
            seed = check_positive_int("seed", seed, minimum=0)
        if hyperparameters is not None and not isinstance(hyperparameters, kt.HyperParameters):
            raise ValueError(
                f"Received: hyperparameters={hyperparameters!r}; expected None or a "
                "kt.HyperParameters."
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
        trial.score, trial.best_step = self._summed_score(trial)

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
        self._storage = optuna.storages.InMemoryStorage()
        with _quiet_optuna():
            self._study = optuna.create_study(
                storage=self._storage, sampler=sampler, directions=list(self._directions)
            )
            self._study_id = self._storage.get_study_id_from_name(self._study.study_name)
            for key, value in study_system_attrs.items():
                self._storage.set_study_system_attr(self._study_id, key, value)
            for number, record in enumerate(trials):
                if record["number"] != number:
                    raise ValueError(
                        f"Received: saved Optuna trial number {record['number']} at "
                        f"position {number}; expected the trials in number order."
                    )
                self._study.add_trial(_frozen_trial(record))

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
                self._add_missing_params(storage_id, trial)
                self._study.tell(number, self._objective_values(trial))
            elif trial.status == _Status.FAILED:
                self._study.tell(number, state=TrialState.FAIL)
            else:
                return False
        return True

    def _add_missing_params(self, storage_id: int, trial: kt.engine.trial.Trial) -> None:
        """Give the Optuna trial the values of hyperparameters it was not asked for.

        These are hyperparameters that the space gained while the trial ran
        (their default values were used), or that a saved study lacks.
        """
        params = self._storage.get_trial(storage_id).params
        values = trial.hyperparameters.values
        for hp in self.hyperparameters.space:
            name = _param_name(hp)
            if name in params or hp.name not in values or not trial.hyperparameters.is_active(hp):
                continue
            distribution = to_optuna_distribution(hp)
            value = values[hp.name]
            if not _contains(distribution, value):
                continue
            # Refused when the study already has another distribution kind
            # under that name; the sampler then learns without this value.
            with contextlib.suppress(ValueError):
                self._storage.set_trial_param(
                    storage_id, name, distribution.to_internal_repr(value), distribution
                )

    def _objective_values(self, trial: kt.engine.trial.Trial) -> list[float]:
        if not self._multi:
            return [float(trial.score)]
        values = []
        for name in self._objective_names:
            at_best = [
                obs.mean() for obs in trial.metrics.get_history(name) if obs.step == trial.best_step
            ]
            value = at_best[0] if at_best else trial.metrics.get_last_value(name)
            values.append(float(value))
        return values

    def _summed_score(self, trial: kt.engine.trial.Trial) -> tuple[float, int]:
        """keras-tuner's MultiObjective score, best over the steps all objectives share."""
        per_step: dict[int, float] = {}
        histories = {
            spec.name: {obs.step: obs.mean() for obs in trial.metrics.get_history(spec.name)}
            for spec in self.objective.objectives
        }
        steps = set.intersection(*(set(h) for h in histories.values()))
        if not steps:  # No common step: the last values.
            step = max(max(h) for h in histories.values())
            last = {name: h[max(h)] for name, h in histories.items()}
            return self._signed_sum(last), step
        for step in sorted(steps):
            per_step[step] = self._signed_sum({name: h[step] for name, h in histories.items()})
        finite = {s: v for s, v in per_step.items() if not math.isnan(v)}
        if not finite:
            return math.nan, min(per_step)
        best = min(finite, key=finite.get)
        return finite[best], best

    def _signed_sum(self, values: Mapping[str, float]) -> float:
        return float(
            sum(
                values[spec.name] if spec.direction == "min" else -values[spec.name]
                for spec in self.objective.objectives
            )
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


__all__ = ["SAMPLERS", "OptunaOracle", "from_optuna_distribution", "to_optuna_distribution"]
