"""The contract every Oracle passes, driven directly: no model is built or trained.

Each test plays one keras-tuner Tuner by hand, as keras-tuner's own oracle
tests do: ``create_trial("tuner0")``, ``update_trial(trial_id, {"score": ...})``,
set the trial's status, ``end_trial(trial)``.

To put another Oracle under contract, append one line to `ORACLE_FACTORIES`:

    ("optuna", lambda objective, max_trials, hyperparameters, seed: OptunaOracle(
        objective=objective, max_trials=max_trials, hyperparameters=hyperparameters,
        seed=seed)),

A contract an Oracle is known to break goes into `KNOWN_FAILURES` (a strict
xfail, so that the test fails again the day the Oracle is fixed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from keras_autoopt._backend import kt
from keras_autoopt.search._greedy_oracle import GreedyOracle
from keras_autoopt.search._optuna_oracle import OptunaOracle

# The Gaussian process of BayesianOptimization warns on a handful of points.
pytestmark = pytest.mark.filterwarnings("ignore:The optimal value found for dimension")

HPS = kt.engine.hyperparameters
RUNNING = kt.engine.trial.TrialStatus.RUNNING
STOPPED = kt.engine.trial.TrialStatus.STOPPED
COMPLETED = kt.engine.trial.TrialStatus.COMPLETED
FAILED = kt.engine.trial.TrialStatus.FAILED

OracleFactory = Callable[[kt.Objective, int, kt.HyperParameters, int], kt.Oracle]


def _bayesian(objective, max_trials, hyperparameters, seed):
    # Random points, then the Gaussian process proposes the last trial of a
    # run: the GP path is exercised while the suite stays fast (one GP
    # proposal takes one to three seconds, whatever the space).
    return kt.oracles.BayesianOptimizationOracle(
        objective=objective, max_trials=max_trials, hyperparameters=hyperparameters,
        seed=seed, num_initial_points=max(1, max_trials - 1),
    )


#: (id, factory(objective, max_trials, hyperparameters, seed) -> Oracle).
ORACLE_FACTORIES: list[tuple[str, OracleFactory]] = [
    ("random", lambda objective, max_trials, hyperparameters, seed: (
        kt.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials,
                                      hyperparameters=hyperparameters, seed=seed))),
    ("bayesian", _bayesian),
    ("grid", lambda objective, max_trials, hyperparameters, seed: (
        kt.oracles.GridSearchOracle(objective=objective, max_trials=max_trials,
                                    hyperparameters=hyperparameters, seed=seed))),
    ("greedy", lambda objective, max_trials, hyperparameters, seed: (
        GreedyOracle(objective=objective, max_trials=max_trials,
                     hyperparameters=hyperparameters, seed=seed))),
    *[(f"optuna-{sampler}", lambda objective, max_trials, hyperparameters, seed, s=sampler: (
        OptunaOracle(objective=objective, max_trials=max_trials,
                     hyperparameters=hyperparameters, seed=seed, sampler=s)))
      for sampler in ("tpe", "nsga2", "qmc")],
]


class InvalidValues(AssertionError):
    """An Oracle proposed values outside its search space."""


#: (oracle id, contract) -> (reason, exception the failure raises).
KNOWN_FAILURES: dict[tuple[str, str], tuple[str, type[BaseException]]] = {
    ("bayesian", "valid_values[log_edge]"): (
        "keras-tuner 1.4.8: the GP's L-BFGS-B search lands on the bound prob=1.0 and "
        "Int.prob_to_value without a step maps it to max_value + 1 (filters=1025 for "
        "Int(1, 1024, sampling='log')).", InvalidValues),
    ("grid", "valid_values[stepped]"): (
        "keras-tuner 1.4.8: GridSearchOracle enumerates Numerical.values, which are "
        "floats for a log grid (batch=4.0 for Int(2, 256, step=2, sampling='log')).",
        InvalidValues),
    ("grid", "save_reload"): (
        "keras-tuner 1.4.8: GridSearchOracle does not save _ordered_ids/_populate_next "
        "(keras-team/keras-tuner#1055): a reloaded oracle stops at once.", AssertionError),
    ("grid", "save_reload_running"): (
        "keras-tuner 1.4.8: GridSearchOracle does not save _ordered_ids/_populate_next "
        "(keras-team/keras-tuner#1055): KeyError after the re-run trial ends.", KeyError),
}


def oracle_cases(contract: str, variants: tuple[str, ...] = ()) -> list[Any]:
    """One pytest.param per Oracle (and variant), a strict xfail where it is known broken.

    Args:
        contract: The contract's name, as in `KNOWN_FAILURES`.
        variants: Optional third parameter values; the contract of variant
            ``v`` is named ``f"{contract}[{v}]"``.

    Returns:
        ``(name, factory)`` params, or ``(name, factory, variant)`` ones.
    """
    cases = []
    for name, factory in ORACLE_FACTORIES:
        for variant in variants or (None,):
            key = contract if variant is None else f"{contract}[{variant}]"
            marks = []
            if (name, key) in KNOWN_FAILURES:
                reason, raises = KNOWN_FAILURES[(name, key)]
                marks.append(pytest.mark.xfail(reason=reason, raises=raises, strict=True))
            values = (name, factory) if variant is None else (name, factory, variant)
            case_id = name if variant is None else f"{name}-{variant}"
            cases.append(pytest.param(*values, id=case_id, marks=marks))
    return cases


# -- search spaces -----------------------------------------------------------


def mixed_space() -> kt.HyperParameters:
    """Every kind of hyperparameter and one conditional scope (parent first)."""
    hp = kt.HyperParameters()
    hp.Choice("block", ["dense", "conv"])
    with hp.conditional_scope("block", ["conv"]):
        hp.Int("kernel", 1, 7, step=2)
    hp.Int("units", 4, 64, step=4)
    hp.Int("filters", 1, 1024, sampling="log")
    hp.Float("dropout", 0.0, 0.5)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Choice("act", ["relu", "tanh", "elu"])
    hp.Boolean("bn")
    hp.Fixed("epochs", 3)
    return hp


def stepped_space() -> kt.HyperParameters:
    """Grids (a Float with a step, an Int on a log grid) and a reverse-log range."""
    hp = kt.HyperParameters()
    hp.Float("momentum", 0.0, 0.9, step=0.1)
    hp.Float("beta", 0.5, 0.999, sampling="reverse_log")
    hp.Int("batch", 2, 256, step=2, sampling="log")
    return hp


def log_edge_space() -> kt.HyperParameters:
    """One Int on a log scale without a step (with an edge-seeking score, its best is max)."""
    hp = kt.HyperParameters()
    hp.Int("filters", 1, 1024, sampling="log")
    return hp


def small_space() -> kt.HyperParameters:
    """Three hyperparameters, thousands of combinations: no Oracle runs out of them.

    Few dimensions keep the Gaussian process of BayesianOptimization cheap.
    """
    hp = kt.HyperParameters()
    hp.Int("units", 1, 256)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Choice("act", ["relu", "tanh", "elu"])
    return hp


SPACES = {"mixed": mixed_space, "stepped": stepped_space, "log_edge": log_edge_space}


# -- scores ------------------------------------------------------------------


def _position(hp: Any, value: Any) -> float:
    """Where ``value`` lies in ``hp``'s range, 0 (first / min) to 1 (last / max)."""
    if isinstance(hp, HPS.Boolean):
        return float(bool(value))
    if isinstance(hp, HPS.Choice):
        return hp.values.index(value) / max(1, len(hp.values) - 1)
    if isinstance(hp, (HPS.Int, HPS.Float)):
        low, high = hp.min_value, hp.max_value
        if hp.sampling == "log":
            return math.log(value / low) / math.log(high / low)
        return (value - low) / (high - low)
    return 0.0


def edge_seeking_score(space: kt.HyperParameters) -> Callable[[dict], float]:
    """A score (to maximize) that grows towards every upper bound and last choice.

    Optimizers pushed to the edges of the space are where off-by-one bugs show.
    """

    def score(values: dict) -> float:
        return sum(_position(hp, values[hp.name]) for hp in space.space if hp.name in values)

    return score


def bowl(values: dict) -> float:
    """A smooth score of `small_space` with its minimum inside the space."""
    return (
        ((values["units"] - 37) / 64) ** 2
        + (math.log10(values["lr"]) + 2.3) ** 2
        + {"relu": 0.0, "tanh": 0.3, "elu": 0.1}[values["act"]]
    )


# -- driving an Oracle like one Tuner would -----------------------------------


def make_oracle(factory: OracleFactory, tmp_path, *, max_trials: int, direction: str = "min",
                space: Callable[[], kt.HyperParameters] = small_space,
                seed: int = 7) -> kt.Oracle:
    oracle = factory(kt.Objective("score", direction), max_trials, space(), seed)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.verbose = 0
    return oracle


def finish(oracle: kt.Oracle, trial: Any, score: float, *, failed: bool = False) -> None:
    oracle.update_trial(trial.trial_id, {"score": score})
    if failed:
        trial.status = FAILED
        trial.message = "simulated failure: the model did not fit"
    else:
        trial.status = COMPLETED
    oracle.end_trial(trial)


def drive(oracle: kt.Oracle, score: Callable[[dict], float], *, limit: int,
          fail: Callable[[int], bool] = lambda index: False,
          fake_score: float | None = None) -> tuple[list[Any], bool]:
    """Run up to ``limit`` trials one after the other; return them and whether it stopped.

    A run that reaches ``limit`` reports False without asking for another trial.

    ``fail(i)`` marks the i-th trial of this call FAILED, after reporting
    ``fake_score`` (a tempting score it must not be credited with) if given.
    """
    ran = []
    for index in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status == STOPPED:
            return ran, True
        assert trial.status == RUNNING, f"one sequential tuner got status {trial.status}"
        if fail(index):
            finish(oracle, trial,
                   score(trial.hyperparameters.values) if fake_score is None else fake_score,
                   failed=True)
        else:
            finish(oracle, trial, score(trial.hyperparameters.values))
        ran.append(trial)
    return ran, False


def snapshot(oracle: kt.Oracle) -> dict[str, tuple]:
    return {tid: (t.status, dict(t.hyperparameters.values), t.score)
            for tid, t in oracle.trials.items()}


# -- validity of values --------------------------------------------------------


def _on_grid(hp: Any, value: float) -> bool:
    if hp.sampling == "linear":
        index = (value - hp.min_value) / hp.step
    elif hp.sampling == "log":
        index = math.log(value / hp.min_value, hp.step)
    else:
        index = math.log((hp.max_value + hp.min_value - value) / hp.min_value, hp.step)
    return math.isclose(index, round(index), abs_tol=1e-6)


def value_violation(hp: Any, value: Any) -> str | None:
    """Why ``value`` is not a valid value of ``hp``, or None."""
    if isinstance(hp, HPS.Fixed):
        return None if value == hp.value else f"{value!r} != fixed {hp.value!r}"
    if isinstance(hp, HPS.Boolean):
        return None if isinstance(value, bool) else f"{value!r} is not a bool"
    if isinstance(hp, HPS.Choice):
        return None if value in hp.values else f"{value!r} not in {hp.values}"
    if isinstance(hp, HPS.Int):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{value!r} ({type(value).__name__}) is not an int"
    elif not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"{value!r} is not a number"
    tolerance = 1e-9 * max(1.0, abs(hp.max_value))
    if not hp.min_value - tolerance <= value <= hp.max_value + tolerance:
        return f"{value!r} outside [{hp.min_value}, {hp.max_value}]"
    if hp.step is not None and not _on_grid(hp, value):
        return f"{value!r} not on the step-{hp.step} {hp.sampling} grid"
    return None


def violations(space: kt.HyperParameters, values: dict) -> list[str]:
    """Every way ``values`` breaks ``space``: bad values, active hps missing, inactive present."""
    names = {hp.name for hp in space.space}
    problems = [f"unknown hyperparameter {name!r}" for name in values if name not in names]
    state = space.copy()
    state.values = dict(values)
    active_names = {hp.name for hp in state.space if state.is_active(hp)}
    for hp in state.space:
        if state.is_active(hp):
            if hp.name not in values:
                problems.append(f"active {hp.name!r} has no value")
                continue
            problem = value_violation(hp, values[hp.name])
            if problem:
                problems.append(f"{hp.name}: {problem}")
        elif hp.name in values and hp.name not in active_names:
            problems.append(f"inactive {hp.name!r} has a value")
    return problems


# -- (a) valid values -------------------------------------------------------------


@pytest.mark.parametrize("name, factory, space_name",
                         oracle_cases("valid_values", tuple(sorted(SPACES))))
def test_proposes_only_valid_values(name, factory, space_name, tmp_path):
    space = SPACES[space_name]
    oracle = make_oracle(factory, tmp_path, max_trials=12, direction="max", space=space)
    trials, _ = drive(oracle, edge_seeking_score(space()), limit=12)
    assert trials
    problems = {t.trial_id: violations(space(), t.hyperparameters.values) for t in trials}
    if any(problems.values()):
        raise InvalidValues({k: v for k, v in problems.items() if v})
    if space_name == "mixed":
        for trial in trials:
            values = trial.hyperparameters.values
            assert ("kernel" in values) == (values["block"] == "conv")
            assert values["epochs"] == 3


# -- (b) max_trials ------------------------------------------------------------------


@pytest.mark.parametrize("name, factory", oracle_cases("max_trials"))
def test_respects_max_trials(name, factory, tmp_path):
    oracle = make_oracle(factory, tmp_path, max_trials=6)
    trials, stopped = drive(oracle, bowl, limit=20)
    assert stopped
    assert len(trials) == len(oracle.trials) == 6
    assert oracle.remaining_trials() == 0
    assert oracle.create_trial("tuner0").status == STOPPED
    assert len(oracle.trials) == 6


# -- (c) save and reload mid-search -----------------------------------------------------


def _reloaded(factory: OracleFactory, tmp_path, max_trials: int) -> kt.Oracle:
    again = make_oracle(factory, tmp_path, max_trials=max_trials)
    again.reload()
    return again


@pytest.mark.parametrize("name, factory", oracle_cases("save_reload"))
def test_survives_save_and_reload(name, factory, tmp_path):
    first = make_oracle(factory, tmp_path, max_trials=9)
    drive(first, bowl, limit=4)
    first.save()
    before = snapshot(first)

    second = _reloaded(factory, tmp_path, 9)
    assert snapshot(second) == before
    _, stopped = drive(second, bowl, limit=20)
    assert stopped
    assert len(second.trials) == 9
    assert len(second.start_order) == len(set(second.start_order)) == 9
    assert {tid: snapshot(second)[tid] for tid in before} == before


@pytest.mark.parametrize("name, factory", oracle_cases("save_reload_running"))
def test_reload_reruns_the_trial_that_was_running(name, factory, tmp_path):
    first = make_oracle(factory, tmp_path, max_trials=8)
    drive(first, bowl, limit=3)
    running = first.create_trial("tuner0")  # saved by create_trial, never ended
    assert running.status == RUNNING

    second = _reloaded(factory, tmp_path, 8)
    again = second.create_trial("tuner0")
    assert again.trial_id == running.trial_id
    assert again.hyperparameters.values == running.hyperparameters.values
    finish(second, again, bowl(again.hyperparameters.values))
    _, stopped = drive(second, bowl, limit=20)
    assert stopped
    assert len(second.trials) == 8
    assert len(second.start_order) == len(set(second.start_order)) == 8
    assert all(t.status == COMPLETED for t in second.trials.values())


# -- (d) failed trials ---------------------------------------------------------------


@pytest.mark.parametrize("name, factory", oracle_cases("failed_trials"))
def test_failed_trials_do_not_stop_the_search_nor_win(name, factory, tmp_path):
    oracle = make_oracle(factory, tmp_path, max_trials=9)
    # Every third trial fails after reporting an unbeatable score.
    trials, stopped = drive(oracle, bowl, limit=20, fail=lambda i: i % 3 == 1,
                            fake_score=-1e9)
    assert stopped
    assert len(oracle.trials) == 9
    failed = [t for t in oracle.trials.values() if t.status == FAILED]
    assert len(failed) == 3
    assert all("simulated failure" in t.message for t in failed)
    best = oracle.get_best_trials(1)[0]
    assert best.status == COMPLETED
    completed = [t.score for t in oracle.trials.values() if t.status == COMPLETED]
    assert best.score == min(completed)


@pytest.mark.parametrize("name, factory", oracle_cases("consecutive_failures"))
def test_consecutive_failures_stop_the_search(name, factory, tmp_path):
    oracle = make_oracle(factory, tmp_path, max_trials=9)
    with pytest.raises(RuntimeError, match="consecutive failures.*\n.*simulated failure"):
        drive(oracle, bowl, limit=20, fail=lambda i: True)
    assert len(oracle.trials) == 3  # the default max_consecutive_failed_trials


# -- (e) best trial -------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["min", "max"])
@pytest.mark.parametrize("name, factory", oracle_cases("best_trial"))
def test_best_trial_has_the_best_score(name, factory, direction, tmp_path):
    oracle = make_oracle(factory, tmp_path, max_trials=8, direction=direction)
    told = []

    def score(values):
        told.append(bowl(values))
        return told[-1]

    drive(oracle, score, limit=8)
    best = oracle.get_best_trials(1)[0]
    expected = min(told) if direction == "min" else max(told)
    assert best.score == expected
    assert best.score == bowl(best.hyperparameters.values)
