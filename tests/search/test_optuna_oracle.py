import importlib.util
import json
import math
import os

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState

from keras_autoopt._backend import keras, kt
from keras_autoopt.search._optuna_oracle import OptunaOracle
from keras_autoopt.search._optuna_space import from_optuna_distribution, to_optuna_distribution
from keras_autoopt.search._optuna_study import SAMPLERS

hps = kt.engine.hyperparameters


# ----------------------------------------------------------------- helpers


def _oracle(tmp_path, space=None, project="p", **kwargs):
    kwargs.setdefault("objective", kt.Objective("loss", "min"))
    kwargs.setdefault("seed", 0)
    oracle = OptunaOracle(hyperparameters=space, **kwargs)
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), project)
    return oracle


def _run(oracle, metrics_fn, n=None, status_fn=None):
    """Drive the oracle as a tuner does; returns the trials run, in order."""
    run = []
    while n is None or len(run) < n:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        status = status_fn(trial) if status_fn else "COMPLETED"
        if status == "COMPLETED":
            oracle.update_trial(trial.trial_id, metrics_fn(trial.hyperparameters.values))
        trial.status = status
        oracle.end_trial(trial)
        run.append(trial)
    return run


def _quadratic_space():
    space = kt.HyperParameters()
    space.Float("x", -10.0, 10.0)
    return space


def _quadratic(values):
    return {"loss": (values["x"] - 3.0) ** 2}


def _config(hp):
    """``get_config`` with the effective default (Int stores None for "min_value")."""
    config = hp.get_config()
    if "default" in config:
        config["default"] = hp.default
    return config


# ------------------------------------------------------------- translation

ROUND_TRIPS = [
    hps.Int("i", 1, 10),
    hps.Int("i", 0, 9, step=3, default=6),
    hps.Int("i", 1, 1024, sampling="log"),
    hps.Float("f", -1.0, 2.0),
    hps.Float("f", 0.0, 1.0, step=0.1),
    hps.Float("f", 1e-5, 1e-1, sampling="log", default=1e-3),
    hps.Choice("c", ["relu", "gelu", "tanh"]),
    hps.Choice("c", [8, 16, 32], default=16),
    hps.Choice("c", [0.1, 0.5], ordered=True),
    hps.Boolean("b"),
    hps.Boolean("b", default=True),
    hps.Fixed("k", "adam"),
    hps.Fixed("k", 3),
]


@pytest.mark.parametrize("hp", ROUND_TRIPS, ids=repr)
def test_round_trip_is_exact(hp):
    dist = to_optuna_distribution(hp)
    back = from_optuna_distribution(hp.name, dist, default=hp.default)
    assert type(back) is type(hp)
    assert _config(back) == _config(hp)


def test_expected_distributions():
    assert to_optuna_distribution(hps.Int("i", 1, 10)) == IntDistribution(1, 10, step=1)
    assert to_optuna_distribution(hps.Int("i", 2, 64, sampling="log")) == IntDistribution(
        2, 64, log=True
    )
    assert to_optuna_distribution(hps.Float("f", 0.0, 1.0, step=0.25)) == FloatDistribution(
        0.0, 1.0, step=0.25
    )
    assert to_optuna_distribution(hps.Float("f", 1e-4, 1.0, sampling="log")) == (
        FloatDistribution(1e-4, 1.0, log=True)
    )
    assert to_optuna_distribution(hps.Choice("c", ["a", "b"])) == CategoricalDistribution(
        ("a", "b")
    )
    assert to_optuna_distribution(hps.Boolean("b")) == CategoricalDistribution((False, True))
    assert to_optuna_distribution(hps.Fixed("k", 1.5)) == CategoricalDistribution((1.5,))


def test_step_not_dividing_the_range_keeps_the_same_grid():
    int_hp = hps.Int("i", 0, 10, step=3)
    dist = to_optuna_distribution(int_hp)
    assert dist == IntDistribution(0, 9, step=3)
    assert set(from_optuna_distribution("i", dist).values) == set(int_hp.values) == {0, 3, 6, 9}
    float_dist = to_optuna_distribution(hps.Float("f", 0.0, 1.0, step=0.3))
    assert float_dist == FloatDistribution(0.0, 0.9, step=0.3)


@pytest.mark.parametrize(
    "hp",
    [
        hps.Int("i", 2, 32, step=2, sampling="log"),
        hps.Int("i", 1, 10, step=3, sampling="reverse_log"),
        hps.Float("f", 1e-4, 1e-1, step=10, sampling="log"),
        hps.Float("f", 1.0, 100.0, step=10, sampling="reverse_log"),
    ],
    ids=repr,
)
def test_multiplicative_steps_become_their_finite_grid(hp):
    dist = to_optuna_distribution(hp)
    assert isinstance(dist, CategoricalDistribution)
    assert sorted(dist.choices) == sorted(set(hp.values))
    if isinstance(hp, hps.Int):
        assert all(type(v) is int for v in dist.choices)
    back = from_optuna_distribution(hp.name, dist)
    assert isinstance(back, hps.Choice)
    assert sorted(back.values) == sorted(dist.choices)


@pytest.mark.parametrize(
    "hp, expected",
    [
        (hps.Int("i", 1, 100, sampling="reverse_log"), hps.Int("i", 1, 100)),
        (hps.Float("f", 0.5, 0.999, sampling="reverse_log"), hps.Float("f", 0.5, 0.999)),
    ],
    ids=["int", "float"],
)
def test_reverse_log_without_step_is_searched_linearly(hp, expected):
    back = from_optuna_distribution(hp.name, to_optuna_distribution(hp))
    assert _config(back) == _config(expected)


def test_choice_order_is_not_kept():
    hp = hps.Choice("c", [3, 1, 2], ordered=False)
    back = from_optuna_distribution("c", to_optuna_distribution(hp))
    assert back.values == [3, 1, 2]
    assert back.ordered  # keras-tuner's default for numbers: Optuna has no order


def test_conditions_pass_through():
    parent = kt.engine.hyperparameters.HyperParameters()
    parent.Choice("model", ["a", "b"])
    with parent.conditional_scope("model", ["a"]):
        parent.Int("units", 1, 4)
    hp = parent.space[-1]
    back = from_optuna_distribution("units", to_optuna_distribution(hp), conditions=hp.conditions)
    assert _config(back) == _config(hp)


def test_translation_errors():
    with pytest.raises(ValueError, match=r"Received: hp='x'; expected a keras-tuner Int"):
        to_optuna_distribution("x")
    with pytest.raises(ValueError, match=r"Received: distribution=.*; expected categorical"):
        from_optuna_distribution("c", CategoricalDistribution((1, "a")))
    with pytest.raises(ValueError, match=r"Received: distribution=.*; expected categorical"):
        from_optuna_distribution("c", CategoricalDistribution((None, 1)))
    with pytest.raises(ValueError, match=r"Received: distribution='x'; expected an Optuna"):
        from_optuna_distribution("c", "x")


# ------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sampler": "foo"}, r"Received: sampler='foo'; expected one of \('tpe', 'nsga2'"),
        ({"sampler": 3}, r"Received: sampler=3; expected one of"),
        ({"objective": "my_metric"}, r"Received: objective='my_metric'; expected a metric name"),
        (
            {"objective": kt.Objective("size", "down")},
            r"Received: objective=.*; expected each objective's direction to be 'min' or 'max'",
        ),
        ({"objective": []}, r"Received: objective=\[\]; expected a non-empty list"),
        (
            {"objective": [kt.Objective("a", "min"), kt.Objective("a", "max")]},
            r"expected objectives with distinct names",
        ),
        ({"objective": 3}, r"Received: objective=3; expected None, a metric name"),
        ({"max_trials": 0}, r"Received: max_trials=0; expected a positive integer"),
        ({"seed": -1}, r"Received: seed=-1; expected an integer >= 0"),
        ({"hyperparameters": {}}, r"Received: hyperparameters=\{\}; expected None or a"),
        ({"tune_new_entries": False}, r"Received: tune_new_entries=False and hyperparameters"),
        ({"allow_new_entries": "yes"}, r"Received: allow_new_entries='yes'; expected True"),
        ({"max_retries_per_trial": -1}, r"Received: max_retries_per_trial=-1"),
        ({"max_consecutive_failed_trials": 0}, r"Received: max_consecutive_failed_trials=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptunaOracle(**kwargs)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch installed")
def test_gp_without_torch_says_what_to_install():
    with pytest.raises(ImportError, match=r"Received: sampler='gp'; .*pip install torch"):
        OptunaOracle(sampler="gp")


def test_directions_and_objective_names():
    single = OptunaOracle(objective="val_accuracy")
    assert single.directions == ("maximize",)
    assert single.objective_names == ("val_accuracy",)
    assert single.study.directions == [StudyDirection.MAXIMIZE]
    default = OptunaOracle()
    assert default.directions == ("minimize",)
    multi = OptunaOracle(objective=[kt.Objective("size", "min"), "val_accuracy"])
    assert multi.directions == ("minimize", "maximize")
    assert multi.objective_names == ("size", "val_accuracy")


def test_seed_zero_is_kept():
    assert OptunaOracle(seed=0).seed == 0


# --------------------------------------------------------------- search


def test_every_hyperparameter_type_is_suggested_within_its_space(tmp_path):
    space = kt.HyperParameters()
    space.Int("int_linear", 1, 10, step=3)
    space.Int("int_log", 1, 256, sampling="log")
    space.Int("int_log_step", 2, 32, step=2, sampling="log")
    space.Float("float_linear", -1.0, 1.0)
    space.Float("float_step", 0.0, 1.0, step=0.25)
    space.Float("float_log", 1e-5, 1e-1, sampling="log")
    space.Float("float_reverse_log", 0.9, 0.999, sampling="reverse_log")
    space.Choice("choice", ["a", "b", "c"])
    space.Boolean("flag")
    space.Fixed("fixed", "adam")
    oracle = _oracle(tmp_path, space, sampler="random", max_trials=25)
    trials = _run(oracle, lambda v: {"loss": 0.0})
    assert len(trials) == 25
    for trial in trials:
        values = trial.hyperparameters.values
        assert set(values) == {hp.name for hp in space.space}
        for hp in space.space:
            value = values[hp.name]
            if isinstance(hp, (hps.Int, hps.Float)) and hp.step is None:
                assert hp.min_value <= value <= hp.max_value
                assert isinstance(value, int if isinstance(hp, hps.Int) else float)
            else:
                assert value in set(hp.values)
    assert {t.hyperparameters.values["float_step"] for t in trials} <= {0.0, 0.25, 0.5, 0.75, 1.0}


def test_conditional_scopes_sample_active_hyperparameters_only(tmp_path):
    space = kt.HyperParameters()
    space.Choice("model", ["mlp", "cnn"])
    with space.conditional_scope("model", ["mlp"]):
        space.Int("units", 4, 64)
    with space.conditional_scope("model", ["cnn"]):
        space.Int("filters", 4, 32)
        space.Choice("pool", ["max", "avg"])
    space.Float("lr", 1e-4, 1e-1, sampling="log")
    oracle = _oracle(tmp_path, space, max_trials=20)
    trials = _run(oracle, lambda v: {"loss": v["lr"]})
    models = set()
    for trial in trials:
        values = trial.hyperparameters.values
        params = oracle.study.trials[oracle._trial_numbers[trial.trial_id]].params
        models.add(values["model"])
        if values["model"] == "mlp":
            assert set(values) == {"model", "units", "lr"}
            assert set(params) == {"model", "units [model=mlp]", "lr"}
        else:
            assert set(values) == {"model", "filters", "pool", "lr"}
            assert set(params) == {"model", "filters [model=cnn]", "pool [model=cnn]", "lr"}
    assert models == {"mlp", "cnn"}


def test_tpe_beats_its_random_start_on_a_quadratic(tmp_path):
    oracle = _oracle(tmp_path, _quadratic_space(), sampler="tpe", max_trials=30, seed=1)
    trials = _run(oracle, _quadratic)
    losses = [t.score for t in trials]
    assert len(losses) == 30
    startup = min(losses[:10])  # TPE starts with 10 random trials
    assert min(losses[10:]) < startup
    assert min(losses) < 0.05
    best = oracle.get_best_trials(1)[0]
    assert best.score == min(losses)
    assert oracle.study.best_value == pytest.approx(min(losses))
    assert oracle.get_pareto_trials() == [best]


def test_nsga2_two_objectives_pareto_front(tmp_path, beats):
    space = kt.HyperParameters()
    space.Float("x", 0.0, 1.0)
    space.Float("y", 0.0, 1.0)
    objective = [kt.Objective("error", "min"), kt.Objective("speed", "max")]
    oracle = _oracle(tmp_path, space, objective=objective, sampler="nsga2", max_trials=24)

    def metrics(values):
        # A trade-off: a high speed costs error; y only adds error.
        return {"error": values["x"] ** 2 + values["y"], "speed": values["x"]}

    trials = _run(oracle, metrics)
    assert oracle.study.directions == [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE]
    assert oracle.directions == ("minimize", "maximize")
    told = {}
    for trial in trials:
        frozen = oracle.study.trials[oracle._trial_numbers[trial.trial_id]]
        expected = metrics(trial.hyperparameters.values)
        assert frozen.values == pytest.approx([expected["error"], expected["speed"]])
        assert trial.score == pytest.approx(expected["error"] - expected["speed"])
        told[frozen.number] = frozen.values
    front = {t.number for t in oracle.study.best_trials}
    assert front
    for number, point in told.items():
        dominated = any(beats(other, point, ["min", "max"]) for other in told.values())
        assert (number in front) == (not dominated)
    assert {t.trial_id for t in oracle.get_pareto_trials()} == {
        trial_id for trial_id, number in oracle._trial_numbers.items() if number in front
    }
    # NSGA-II went past its first generation (population max_trials // 5, at least 4).
    generations = {t.system_attrs.get("NSGAIISampler:generation") for t in oracle.study.trials}
    assert max(generations) >= 2


def _error_and_size_trial(tmp_path, size_direction):
    """A one-trial oracle on "error" (min) and "size" (``size_direction``), and its trial."""
    space = kt.HyperParameters()
    space.Float("x", 0.0, 1.0)
    objective = [kt.Objective("error", "min"), kt.Objective("size", size_direction)]
    oracle = _oracle(tmp_path, space, objective=objective, max_trials=1)
    return oracle, oracle.create_trial("tuner0")


def _complete(oracle, trial) -> None:
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def _complete_again(oracle, earlier) -> None:
    """The next trial is ``earlier`` again (its id and values); complete it on `_quadratic`."""
    again = oracle.create_trial("tuner0")
    assert again.trial_id == earlier.trial_id
    assert again.hyperparameters.values == earlier.hyperparameters.values
    oracle.update_trial(again.trial_id, _quadratic(again.hyperparameters.values))
    _complete(oracle, again)


def test_multi_objective_values_are_read_at_the_best_summed_step(tmp_path):
    oracle, trial = _error_and_size_trial(tmp_path, "max")
    # Sums (error - size): step 0: 0.5, step 1: -0.1 (best), step 2: 0.3.
    for step, (error, size) in enumerate([(0.9, 0.4), (0.5, 0.6), (0.2, -0.1)]):
        oracle.update_trial(trial.trial_id, {"error": error, "size": size}, step=step)
    _complete(oracle, trial)
    ended = oracle.get_trial(trial.trial_id)
    assert ended.best_step == 1
    assert ended.score == pytest.approx(-0.1)
    assert oracle.study.trials[0].values == pytest.approx([0.5, 0.6])
    # Each objective's metric has that objective's direction.
    assert ended.metrics.get_direction("size") == "max"
    assert ended.metrics.get_best_value("size") == pytest.approx(0.6)


def test_multi_objective_with_keras_tuner_summed_metric(tmp_path):
    oracle, trial = _error_and_size_trial(tmp_path, "min")
    # What keras-tuner reports from a History: the best epoch's metrics, summed included.
    oracle.update_trial(
        trial.trial_id, {"error": 0.25, "size": 3.0, "multi_objective": 3.25}, step=4
    )
    _complete(oracle, trial)
    assert oracle.get_trial(trial.trial_id).score == pytest.approx(3.25)
    assert oracle.study.trials[0].values == pytest.approx([0.25, 3.0])


def test_max_trials_then_stopped(tmp_path):
    oracle = _oracle(tmp_path, _quadratic_space(), max_trials=5)
    trials = _run(oracle, _quadratic, n=20)
    assert len(trials) == 5
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert [t.state for t in oracle.study.trials] == [TrialState.COMPLETE] * 5


def test_failed_trials_are_told_as_fail_and_the_search_goes_on(tmp_path):
    oracle = _oracle(tmp_path, _quadratic_space(), max_trials=9)
    trials = _run(
        oracle,
        _quadratic,
        status_fn=lambda t: "FAILED" if int(t.trial_id) % 3 == 1 else "COMPLETED",
    )
    assert len(trials) == 9
    states = [oracle.study.trials[oracle._trial_numbers[t.trial_id]].state for t in trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE] * 3


def test_invalid_trial_is_retried_and_told_once(tmp_path):
    oracle = _oracle(tmp_path, _quadratic_space(), max_trials=2, max_retries_per_trial=1)
    first = oracle.create_trial("tuner0")
    first.status = "INVALID"
    oracle.end_trial(first)
    number = oracle._trial_numbers[first.trial_id]
    assert oracle.study.trials[number].state == TrialState.RUNNING  # waits for the retry
    _complete_again(oracle, first)
    assert oracle.study.trials[number].state == TrialState.COMPLETE
    assert oracle.study.trials[number].value == pytest.approx(oracle.trials["0"].score)


@pytest.mark.filterwarnings("ignore:All-NaN axis encountered:RuntimeWarning")
def test_nan_objective_fails_the_trial(tmp_path):
    oracle = _oracle(tmp_path, _quadratic_space(), max_trials=2)
    trials = _run(oracle, lambda v: {"loss": math.nan})
    assert [oracle.trials[t.trial_id].status for t in trials] == ["FAILED", "FAILED"]
    assert [t.state for t in oracle.study.trials] == [TrialState.FAIL] * 2


def test_exhausted_space_stops_after_duplicate_proposals(tmp_path):
    space = kt.HyperParameters()
    space.Choice("act", ["relu", "tanh"])
    oracle = _oracle(tmp_path, space, max_trials=10)
    trials = _run(oracle, lambda v: {"loss": 1.0 if v["act"] == "relu" else 2.0})
    assert sorted(t.hyperparameters.values["act"] for t in trials) == ["relu", "tanh"]
    duplicates = [t for t in oracle.study.trials if t.user_attrs.get("keras_tuner_duplicate")]
    assert duplicates and all(t.state == TrialState.FAIL for t in duplicates)
    assert len(oracle.study.trials) == 2 + len(duplicates)


def test_space_discovered_during_the_first_trial(tmp_path):
    oracle = OptunaOracle(objective=kt.Objective("loss", "min"), max_trials=4, seed=0)
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), "p")
    seen = []
    for _ in range(4):
        trial = oracle.create_trial("tuner0")
        hp = trial.hyperparameters
        x = hp.Float("x", -10.0, 10.0, default=1.0)  # registered lazily, as in a build
        seen.append(dict(hp.values))
        oracle.update_trial(trial.trial_id, {"loss": (x - 3.0) ** 2})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert seen[0] == {"x": 1.0}  # the first trial runs on the default
    assert [h.name for h in oracle.hyperparameters.space] == ["x"]
    assert oracle.study.trials[0].params == {"x": 1.0}  # and Optuna learns from it
    assert len({s["x"] for s in seen[1:]}) == 3 and all(
        "x" in p.params for p in oracle.study.trials
    )


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != "gp"])
def test_every_named_sampler_runs(tmp_path, sampler):
    space = _quadratic_space()
    space.Choice("act", ["relu", "tanh"])
    objective = [kt.Objective("loss", "min"), kt.Objective("size", "min")]
    oracle = _oracle(tmp_path, space, objective=objective, sampler=sampler, max_trials=12)
    trials = _run(oracle, lambda v: {"loss": (v["x"] - 3.0) ** 2, "size": abs(v["x"])})
    assert len(trials) == 12
    assert sum(t.state == TrialState.COMPLETE for t in oracle.study.trials) == 12


def test_sampler_instance(tmp_path):
    sampler = optuna.samplers.TPESampler(seed=3, n_startup_trials=3)
    oracle = _oracle(tmp_path, _quadratic_space(), sampler=sampler, max_trials=6)
    _run(oracle, _quadratic)
    assert oracle.study.sampler is sampler
    assert len(oracle.study.trials) == 6


def test_optuna_info_logs_are_hidden_and_the_level_restored(tmp_path, capfd):
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        oracle = _oracle(tmp_path, _quadratic_space(), max_trials=2)
        _run(oracle, _quadratic)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        assert "A new study created" not in capfd.readouterr().err
    finally:
        optuna.logging.set_verbosity(previous)


# ----------------------------------------------------------- persistence


def test_reload_mid_search_continues_without_loss_or_duplicates(tmp_path):
    space = _quadratic_space()
    space.Choice("act", ["relu", "tanh"])
    kwargs = {"objective": kt.Objective("loss", "min"), "sampler": "tpe", "max_trials": 12}
    first = _oracle(tmp_path, space, seed=5, **kwargs)
    _run(
        first, _quadratic, n=5, status_fn=lambda t: "FAILED" if t.trial_id == "03" else "COMPLETED"
    )
    ongoing = first.create_trial("tuner0")  # running when the process stops
    saved_trials = [(t.number, t.state, t.params, t.values) for t in first.study.trials]
    with open(os.path.join(tmp_path, "p", "oracle.json")) as f:
        state = json.load(f)
    assert len(state["optuna"]["trials"]) == 6

    second = _oracle(tmp_path, None, seed=None, **kwargs)
    second.reload()
    assert second.seed == 5
    assert set(second.trials) == {f"{i:02d}" for i in range(6)}
    assert second._trial_numbers == first._trial_numbers
    assert [(t.number, t.state, t.params, t.values) for t in second.study.trials] == saved_trials
    assert [h.name for h in second.hyperparameters.space] == ["x", "act"]

    # keras-tuner runs the interrupted trial again, with its id and values.
    _complete_again(second, ongoing)
    rest = _run(second, _quadratic)
    assert len(rest) == 6
    assert len(second.trials) == 12
    assert set(second.trials) == {f"{i:02d}" for i in range(12)}
    numbers = list(second._trial_numbers.values())
    assert len(set(numbers)) == 12
    told = [second.study.trials[n] for n in numbers]
    assert sum(t.state == TrialState.COMPLETE for t in told) == 11
    assert sum(t.state == TrialState.FAIL for t in told) == 1
    for trial_id, number in second._trial_numbers.items():
        assert second.study.trials[number].user_attrs["keras_tuner_trial_id"] == trial_id
    xs = [t.hyperparameters.values["x"] for t in second.trials.values()]
    assert len(set(xs)) == 12
    assert second.create_trial("tuner0").status == "STOPPED"


def test_reload_closes_a_trial_ended_after_the_last_save(tmp_path):
    first = _oracle(tmp_path, _quadratic_space(), max_trials=3)
    _run(first, _quadratic, n=1)
    trial = first.create_trial("tuner0")
    first.update_trial(trial.trial_id, _quadratic(trial.hyperparameters.values))
    trial.status = "COMPLETED"
    # keras-tuner's own end_trial saved oracle.json, the process died before ours.
    kt.Oracle.end_trial(first, trial)
    second = _oracle(tmp_path, None)
    second.reload()
    frozen = second.study.trials[second._trial_numbers[trial.trial_id]]
    assert frozen.state == TrialState.COMPLETE
    assert frozen.value == pytest.approx(second.trials[trial.trial_id].score)


def test_reload_with_another_objective_is_refused(tmp_path):
    first = _oracle(tmp_path, _quadratic_space(), max_trials=3)
    _run(first, _quadratic, n=1)
    other = _oracle(tmp_path, None, objective=kt.Objective("loss", "max"))
    with pytest.raises(
        ValueError, match=r"Received: a saved search with directions=\['minimize'\]"
    ):
        other.reload()


def test_reload_of_a_project_from_another_oracle_is_refused(tmp_path):
    random_oracle = kt.oracles.RandomSearchOracle(
        objective=kt.Objective("loss", "min"), max_trials=2, hyperparameters=_quadratic_space()
    )
    random_oracle.verbose = 0
    random_oracle._set_project_dir(str(tmp_path), "p")
    _run(random_oracle, _quadratic, n=1)
    oracle = _oracle(tmp_path, None)
    with pytest.raises(RuntimeError, match="Error reloading `Oracle`"):
        oracle.reload()


# ------------------------------------------------------------ end to end


@pytest.mark.slow
def test_keras_tuner_tuner_with_the_oracle(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")

    def build(hp):
        model = keras.Sequential(
            [
                keras.layers.Input((4,)),
                keras.layers.Dense(hp.Int("units", 2, 8, step=2), activation="relu"),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    oracle = OptunaOracle(
        objective=[kt.Objective("val_loss", "min"), kt.Objective("val_accuracy", "max")],
        max_trials=3,
        sampler="nsga2",
        seed=0,
    )
    tuner = kt.Tuner(oracle=oracle, hypermodel=build, directory=tmp_path, project_name="e2e")
    tuner.search(x, y, validation_data=(x[:16], y[:16]), epochs=1, batch_size=16, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 3
    for trial in trials:
        frozen = oracle.study.trials[oracle._trial_numbers[trial.trial_id]]
        assert frozen.state == TrialState.COMPLETE
        assert frozen.values == pytest.approx(
            [trial.metrics.get_last_value("val_loss"), trial.metrics.get_last_value("val_accuracy")]
        )
        assert set(frozen.params) == {"units", "lr"}
    assert set(tuner.get_best_hyperparameters(1)[0].values) == {"units", "lr"}
