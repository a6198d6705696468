"""GreedyOracle's own behaviour; the contract every Oracle passes is in test_oracle_contract."""

from __future__ import annotations

import json
import math
import re

import pytest

from keras_autoopt._backend import kt
from keras_autoopt.search._greedy_oracle import GreedyOracle

HPS = kt.engine.hyperparameters
RUNNING = kt.engine.trial.TrialStatus.RUNNING
IDLE = kt.engine.trial.TrialStatus.IDLE
STOPPED = kt.engine.trial.TrialStatus.STOPPED
COMPLETED = kt.engine.trial.TrialStatus.COMPLETED
INVALID = kt.engine.trial.TrialStatus.INVALID
FAILED = kt.engine.trial.TrialStatus.FAILED


def make(tmp_path, space, *, direction="min", project="p", **kwargs):
    oracle = GreedyOracle(objective=kt.Objective("score", direction),
                          hyperparameters=space, **kwargs)
    oracle._set_project_dir(str(tmp_path), project)
    oracle.verbose = 0
    return oracle


def finish(oracle, trial, score, status=COMPLETED):
    oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = status
    if status != COMPLETED:
        trial.message = "simulated failure"
    oracle.end_trial(trial)


def run(oracle, score, *, limit=100, status=lambda values: COMPLETED):
    """Run trials one after the other until STOPPED or ``limit``; return them."""
    trials = []
    for _ in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status == STOPPED:
            break
        assert trial.status == RUNNING
        values = trial.hyperparameters.values
        finish(oracle, trial, score(values), status(values))
        trials.append(trial)
    return trials


def incumbents(trials, direction="min"):
    """The best completed values before each trial was proposed (None before any)."""
    best, best_score, before = None, None, []
    for trial in trials:
        before.append(best)
        if trial.status == COMPLETED and (
            best_score is None
            or (trial.score < best_score if direction == "min" else trial.score > best_score)
        ):
            best, best_score = dict(trial.hyperparameters.values), trial.score
    return before


def four_kinds():
    hp = kt.HyperParameters()
    hp.Int("a", 0, 8, step=2)
    hp.Float("b", 0.0, 1.0)
    hp.Choice("c", ["x", "y", "z"])
    hp.Boolean("d")
    hp.Fixed("e", "fixed")
    return hp


def coupled(values):
    """Not separable: the best ``b`` depends on ``a``."""
    return ((values["a"] - 4) / 4) ** 2 + (values["b"] - values["a"] / 10) ** 2 + {
        "x": 0.5, "y": 0.0, "z": 0.2}[values["c"]] + 0.1 * values["d"]


# -- the walk ------------------------------------------------------------------


def test_changes_one_hyperparameter_at_a_time_from_the_incumbent(tmp_path):
    oracle = make(tmp_path, four_kinds(), max_trials=100)
    trials = run(oracle, coupled)
    assert trials[0].hyperparameters.values == {"a": 0, "b": 0.0, "c": "x", "d": False,
                                                "e": "fixed"}
    changed = []
    for trial, incumbent in zip(trials[1:], incumbents(trials)[1:], strict=True):
        values = trial.hyperparameters.values
        diff = [name for name in values if values[name] != incumbent[name]]
        assert len(diff) == 1, (values, incumbent)
        changed.append(diff[0])
    # Round 0 visits the coordinates in order, each candidate but the incumbent's.
    assert changed[:11] == ["a"] * 4 + ["b"] * 4 + ["c"] * 2 + ["d"]
    assert "e" not in changed
    assert oracle.create_trial("tuner0").status == STOPPED
    seen = [json.dumps(t.hyperparameters.values, sort_keys=True) for t in trials]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("direction", ["min", "max"])
def test_finds_the_optimum_of_a_separable_function_in_the_first_round(direction, tmp_path):
    hp = kt.HyperParameters()
    hp.Choice("act", ["relu", "tanh", "elu", "gelu"])
    hp.Int("layers", 0, 4)
    hp.Boolean("bn")

    def loss(values):
        return ({"relu": 0.3, "tanh": 0.5, "elu": 0.0, "gelu": 0.1}[values["act"]]
                + (values["layers"] - 3) ** 2 + (0.0 if values["bn"] else 0.2))

    sign = 1 if direction == "min" else -1
    optimum = {"act": "elu", "layers": 3, "bn": True}
    oracle = make(tmp_path, hp, direction=direction, max_trials=50)
    trials = run(oracle, lambda values: sign * loss(values))
    # Round 0: the defaults, then every other candidate of each coordinate.
    round_0 = 1 + 3 + 4 + 1
    best = (min if direction == "min" else max)(trials[:round_0], key=lambda t: t.score)
    assert best.hyperparameters.values == optimum
    # Round 1 sweeps "act" and "layers" again around the optimum (new
    # contexts), "bn" has nothing new; no improvement: the search stops.
    assert len(trials) == round_0 + 3 + 4
    assert oracle.current_round == 1
    assert oracle.best_values == optimum
    assert oracle.get_best_trials(1)[0].hyperparameters.values == optimum
    assert oracle.create_trial("tuner0").status == STOPPED


def test_rounds_continue_while_they_improve_and_stop_at_a_coordinate_wise_optimum(tmp_path):
    hp = kt.HyperParameters()
    hp.Int("a", 0, 2)
    hp.Int("b", 0, 2)
    oracle = make(tmp_path, hp, max_trials=None)
    trials = run(oracle, lambda v: (v["a"] - v["b"]) ** 2 + 0.5 * (v["b"] - 2) ** 2)
    tried = [(t.hyperparameters["a"], t.hyperparameters["b"]) for t in trials]
    # Round 0 around (0, 0), round 1 around (0, 1), round 2 adds nothing.
    assert tried == [(0, 0), (1, 0), (2, 0), (0, 1), (0, 2), (1, 1), (2, 1), (1, 2)]
    assert oracle.best_values == {"a": 1, "b": 1}  # greedy: (2, 2) is never reached
    assert oracle.current_round == 2


def test_max_trials_cuts_the_walk(tmp_path):
    oracle = make(tmp_path, four_kinds(), max_trials=3)
    assert len(run(oracle, coupled)) == 3
    assert oracle.create_trial("tuner0").status == STOPPED


# -- conditional and new hyperparameters -------------------------------------------


def model_space():
    hp = kt.HyperParameters()
    hp.Choice("model", ["mlp", "cnn"])
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 8, 32, step=8)
    with hp.conditional_scope("model", ["cnn"]):
        hp.Int("filters", 4, 16, step=4)
    hp.Float("lr", 0.0, 1.0)
    return hp


def test_only_active_hyperparameters_are_varied(tmp_path):
    def loss(values):
        if values["model"] == "cnn":
            return abs(values["filters"] - 12) / 10 + abs(values["lr"] - 0.5)
        return 1.0 + abs(values["units"] - 16) / 100 + abs(values["lr"] - 0.5)

    oracle = make(tmp_path, model_space(), max_trials=100)
    trials = run(oracle, loss)
    for trial, incumbent in zip(trials[1:], incumbents(trials)[1:], strict=True):
        values = trial.hyperparameters.values
        assert ("units" in values) == (values["model"] == "mlp")
        assert ("filters" in values) == (values["model"] == "cnn")
        # Only a hyperparameter active under the incumbent is varied.
        shared = values.keys() & incumbent.keys()
        diff = [name for name in shared if values[name] != incumbent[name]]
        assert len(diff) == 1, (values, incumbent)
        if diff != ["model"]:
            assert values.keys() == incumbent.keys()
        else:
            # Switching the parent brings the other branch in at its defaults.
            child = "filters" if values["model"] == "cnn" else "units"
            assert values[child] == {"filters": 4, "units": 8}[child]
    assert oracle.best_values == {"model": "cnn", "filters": 12, "lr": 0.5}
    assert {t.hyperparameters.values.get("filters") for t in trials} >= {4, 8, 12, 16}


def test_hyperparameters_discovered_while_building_join_the_walk(tmp_path):
    oracle = GreedyOracle(objective=kt.Objective("score", "max"), max_trials=100)
    oracle._set_project_dir(str(tmp_path), "p")
    oracle.verbose = 0

    def build_and_score(hp):
        # What a HyperModel does: ask for values, registering new entries.
        score = {"x": 0.0, "y": 0.5, "z": 1.0}[hp.Choice("kind", ["x", "y", "z"])]
        score -= abs(hp.Int("depth", 0, 4) - 3)
        if hp["kind"] == "z":  # an option only seen once kind == "z" was tried
            score += hp.Boolean("extra")
        return score

    first = True
    for _ in range(100):
        trial = oracle.create_trial("tuner0")
        if trial.status == STOPPED:
            break
        if first:
            assert trial.hyperparameters.values == {}
            first = False
        finish(oracle, trial, build_and_score(trial.hyperparameters))
    assert oracle.get_state()["greedy"]["coordinates"] == ["kind", "depth", "extra"]
    assert oracle.best_values == {"kind": "z", "depth": 3, "extra": True}


class _ScoreOnlyTuner(kt.Tuner):
    """A keras-tuner Tuner whose trial asks for hyperparameters and returns a score."""

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        model = hp.Choice("model", ["mlp", "cnn"])
        with hp.conditional_scope("model", ["mlp"]):
            units = hp.Int("units", 8, 32, step=8)
        with hp.conditional_scope("model", ["cnn"]):
            filters = hp.Int("filters", 4, 16, step=4)
        lr = hp.Float("lr", 1e-4, 1e-1, sampling="log")
        if model == "cnn":
            return abs(filters - 12) / 10 + abs(math.log10(lr) + 2.5)
        return 1.0 + abs(units - 16) / 100 + abs(math.log10(lr) + 2.5)


def test_runs_under_a_keras_tuner_tuner_and_resumes(tmp_path):
    tuner = _ScoreOnlyTuner(oracle=GreedyOracle(max_trials=30), directory=str(tmp_path),
                            project_name="p")
    tuner.search(verbose=0)
    oracle = tuner.oracle
    assert 1 < len(oracle.trials) < 30  # the walk stopped by itself
    assert oracle.best_values == {"model": "cnn", "filters": 12, "lr": 0.00316227766017}
    resumed = _ScoreOnlyTuner(oracle=GreedyOracle(max_trials=30), directory=str(tmp_path),
                              project_name="p")
    resumed.search(verbose=0)
    assert set(resumed.oracle.trials) == set(oracle.trials)


# -- state ---------------------------------------------------------------------


def _values(trials):
    return [dict(t.hyperparameters.values) for t in trials]


@pytest.mark.parametrize("cut", [1, 5, 9])
def test_reload_mid_search_continues_exactly(cut, tmp_path):
    reference = make(tmp_path, four_kinds(), project="reference", max_trials=14)
    expected = _values(run(reference, coupled))

    first = make(tmp_path, four_kinds(), max_trials=14)
    head = run(first, coupled, limit=cut)
    first.save()
    second = make(tmp_path, four_kinds(), max_trials=14)
    second.reload()
    assert second.get_state()["greedy"] == first.get_state()["greedy"]
    tail = run(second, coupled)
    assert _values(head) + _values(tail) == expected
    assert second.get_state()["greedy"] == reference.get_state()["greedy"]


def test_reload_with_a_running_trial_runs_it_again(tmp_path):
    reference = make(tmp_path, four_kinds(), project="reference", max_trials=10)
    expected = _values(run(reference, coupled))

    first = make(tmp_path, four_kinds(), max_trials=10)
    run(first, coupled, limit=4)
    running = first.create_trial("tuner0")
    second = make(tmp_path, four_kinds(), max_trials=10)
    second.reload()
    again = second.create_trial("tuner0")
    assert again.trial_id == running.trial_id
    finish(second, again, coupled(again.hyperparameters.values))
    run(second, coupled)
    assert [dict(second.trials[tid].hyperparameters.values) for tid in second.start_order] \
        == expected


def test_state_is_json_and_restores_the_walk(tmp_path):
    oracle = make(tmp_path, four_kinds(), max_trials=20)
    run(oracle, coupled, limit=7)
    state = json.loads(json.dumps(oracle.get_state()))
    greedy = state["greedy"]
    assert greedy["coordinates"] == ["a", "b", "c", "d"]
    assert (greedy["coordinate_index"], greedy["round"]) == (1, 0)
    assert greedy["best_values"] == oracle.best_values
    assert oracle.current_coordinate == "b"

    other = make(tmp_path, four_kinds(), max_trials=20)
    other.trials = oracle.trials  # set_state refers to trials by ID
    other.set_state(state)
    assert other.get_state()["greedy"] == greedy
    assert other.populate_space("07") == oracle.populate_space("07")


def test_reloading_another_oracles_project_fails(tmp_path):
    random_search = kt.oracles.RandomSearchOracle(
        objective=kt.Objective("score", "min"), max_trials=5, hyperparameters=four_kinds())
    random_search._set_project_dir(str(tmp_path), "p")
    random_search.verbose = 0
    run(random_search, coupled, limit=2)
    greedy = make(tmp_path, four_kinds())
    with pytest.raises(RuntimeError, match="Error reloading `Oracle`"):
        greedy.reload()


# -- failures, retries, parallel workers ----------------------------------------------


def test_failed_trials_count_as_evaluated_and_never_become_the_incumbent(tmp_path):
    oracle = make(tmp_path, four_kinds(), max_trials=100)

    def status(values):
        return FAILED if values["a"] in (2, 6) else COMPLETED

    def score(values):
        return -100.0 if status(values) == FAILED else coupled(values)

    trials = run(oracle, score, status=status)
    failed = [t for t in trials if t.status == FAILED]
    assert failed and all(t.score is None for t in failed)
    seen = [json.dumps(t.hyperparameters.values, sort_keys=True) for t in trials]
    assert len(seen) == len(set(seen))  # a failed configuration is not proposed again
    assert oracle.best_values["a"] not in (2, 6)
    assert oracle.get_best_trials(1)[0].status == COMPLETED
    assert oracle.create_trial("tuner0").status == STOPPED


def test_invalid_trial_is_retried_by_keras_tuner_then_the_walk_goes_on(tmp_path):
    oracle = make(tmp_path, four_kinds(), max_trials=6, max_retries_per_trial=1)
    run(oracle, coupled, limit=2)
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, 0.0, status=INVALID)
    again = oracle.create_trial("tuner0")
    assert again.trial_id == trial.trial_id
    finish(oracle, again, coupled(again.hyperparameters.values))
    assert oracle.trials[trial.trial_id].status == COMPLETED
    assert len(run(oracle, coupled)) == 3
    assert len(oracle.trials) == 6


@pytest.mark.filterwarnings("ignore:All-NaN axis encountered:RuntimeWarning")
def test_nan_score_fails_the_trial_without_making_it_the_incumbent(tmp_path):
    oracle = make(tmp_path, four_kinds(), max_trials=5)
    run(oracle, coupled, limit=1)
    best = oracle.best_values
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, float("nan"))
    assert oracle.trials[trial.trial_id].status == FAILED
    assert oracle.best_values == best


def test_parallel_workers_wait_while_the_next_step_depends_on_running_trials(tmp_path):
    hp = kt.HyperParameters()
    hp.Choice("x", ["a", "b"])
    hp.Choice("y", ["c", "d"])
    oracle = make(tmp_path, hp, max_trials=10)
    first = oracle.create_trial("t0")
    second = oracle.create_trial("t1")
    assert first.hyperparameters.values == {"x": "a", "y": "c"}
    assert second.hyperparameters.values == {"x": "b", "y": "c"}
    assert oracle.create_trial("t2").status == IDLE  # "x" used up, results pending
    finish(oracle, first, 1.0)
    assert oracle.create_trial("t2").status == IDLE
    finish(oracle, second, 0.0)
    third = oracle.create_trial("t2")
    assert third.hyperparameters.values == {"x": "b", "y": "d"}  # from the new incumbent


# -- candidates and arguments -------------------------------------------------------


@pytest.mark.parametrize("hp, expected", [
    pytest.param(HPS.Int("n", 0, 4), [0, 1, 2, 3, 4], id="int-small-grid"),
    pytest.param(HPS.Int("n", 0, 100, step=10), [0, 30, 50, 80, 100], id="int-large-grid"),
    pytest.param(HPS.Int("n", 1, 1024, sampling="log"), [1, 6, 32, 181, 1024],
                 id="int-log"),
    pytest.param(HPS.Int("n", 2, 256, step=2, sampling="log"), [2, 8, 32, 64, 256],
                 id="int-log-grid"),
    pytest.param(HPS.Int("n", 1, 3, sampling="log"), [1, 2, 3], id="int-log-repeats"),
    pytest.param(HPS.Float("f", 0.0, 1.0), [0.0, 0.25, 0.5, 0.75, 1.0], id="float"),
    pytest.param(HPS.Float("f", 1e-4, 1.0, sampling="log"), [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
                 id="float-log"),
    pytest.param(HPS.Float("f", 0.0, 0.3, step=0.1), [0.0, 0.1, 0.2, 0.3], id="float-grid"),
    pytest.param(HPS.Choice("c", list("abcdefg")), list("abcdefg"), id="choice"),
    pytest.param(HPS.Boolean("b"), [False, True], id="boolean"),
    pytest.param(HPS.Fixed("k", 3), [], id="fixed"),
])
def test_candidate_values(hp, expected, tmp_path):
    values = make(tmp_path, None).candidate_values(hp)
    assert values == expected
    assert [type(v) for v in values] == [type(v) for v in expected]


def test_candidates_follow_max_values_per_hp(tmp_path):
    oracle = make(tmp_path, None, max_values_per_hp=2)
    assert oracle.candidate_values(HPS.Float("f", 0.0, 1.0)) == [0.0, 1.0]
    assert oracle.candidate_values(HPS.Int("n", 0, 9)) == [0, 9]
    reverse = oracle.candidate_values(HPS.Float("f", 1.0, 100.0, sampling="reverse_log"))
    assert reverse == [1.0, 100.0]
    middle = make(tmp_path, None, max_values_per_hp=3).candidate_values(
        HPS.Float("f", 1.0, 100.0, sampling="reverse_log"))
    assert middle[1] == pytest.approx(101.0 - 10.0)  # dense near max_value


def test_unknown_hyperparameter_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match=re.escape("Received: hyperparameter=")):
        make(tmp_path, None).candidate_values(HPS.HyperParameter("custom"))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_values_per_hp": 0}, "Received: max_values_per_hp=0; expected an integer >= 2"),
    ({"max_values_per_hp": 1}, "Received: max_values_per_hp=1; expected an integer >= 2"),
    ({"max_values_per_hp": True}, "Received: max_values_per_hp=True"),
    ({"max_values_per_hp": 2.5}, "Received: max_values_per_hp=2.5"),
    ({"max_trials": 0}, "Received: max_trials=0; expected a positive integer"),
    ({"seed": "7"}, "Received: seed='7'; expected None or an integer"),
    ({"hyperparameters": {"a": 1}}, "Received: hyperparameters={'a': 1}"),
    ({"tune_new_entries": False},
     "Received: tune_new_entries=False with hyperparameters=None"),
    ({"allow_new_entries": False},
     "Received: allow_new_entries=False with hyperparameters=None"),
    ({"allow_new_entries": "yes"}, "Received: allow_new_entries='yes'; expected True or False"),
    ({"max_retries_per_trial": -1},
     "Received: max_retries_per_trial=-1; expected an integer >= 0"),
    ({"max_consecutive_failed_trials": 0},
     "Received: max_consecutive_failed_trials=0; expected a positive integer"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        GreedyOracle(**kwargs)


def test_defaults_match_keras_tuner():
    oracle = GreedyOracle()
    assert (oracle.max_trials, oracle.max_values_per_hp) == (10, 5)
    assert (oracle.max_retries_per_trial, oracle.max_consecutive_failed_trials) == (0, 3)
    assert oracle.objective.name == "default_objective"
    assert oracle.objective.direction == "min"
    assert oracle.best_values is None and oracle.current_coordinate is None
