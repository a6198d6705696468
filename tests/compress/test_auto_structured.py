"""The structured stage of `auto_compress`: gradual cuts, group sizes, probes and the search.

Channel and parameter counts are worked out by hand; the search runs with callbacks that
record each stage tried and accept by a rule the test sets, once end to end on a real tiny
model and otherwise with a stand-in plan that prunes without fine-tuning or exporting.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt._rules import check_channel_ratios
from keras_autoopt.compress import CompressionPlan, _auto_structured, prune_by_ratio
from keras_autoopt.compress._auto_structured import (
    StructuredSearch,
    gradual_ratios,
    group_sensitivity,
    group_sizes,
)

L = keras.layers
RATIOS = (0.25, 0.5, 0.75)
# Parameters each group of the tiny CNN removes at 0.75 (conv 8 filters of 3x3x1, pool to
# 4x4, dense 32 units, out 3): conv 6 * (9 + 1) + its 6 * 16 flattened rows * 32 units;
# dense 24 * (128 + 1) + its 24 rows * 3 of out.
CNN_SIZES_75 = {"conv": 6 * 10 + 6 * 16 * 32, "dense": 24 * 129 + 24 * 3}


def _two_convs():
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        L.Conv2D(16, 3, name="c1"),
        L.Conv2D(16, 3, name="c2"),
        L.Flatten(name="flat"),
        L.Dense(32, name="d1"),
        L.Dense(3, activation="softmax", name="out"),
    ])


def _counts(model):
    return {"c1": model.get_layer("c1").filters, "c2": model.get_layer("c2").filters,
            "d1": model.get_layer("d1").units}


def test_one_step_is_the_allocation_without_zero_ratios():
    model = _two_convs()
    assert gradual_ratios(model, {"c1": 0.75}, 1) == [{"c1": 0.75}]
    assert gradual_ratios(model, {"c1": 0.75, "c2": 0.0, "d1": 0.5}, 1) == [
        {"c1": 0.75, "d1": 0.5}]
    assert gradual_ratios(model, {"c2": 0.0}, 2) == []


def test_two_steps_halve_geometrically_and_end_where_one_cut_does():
    model = _two_convs()
    cuts = gradual_ratios(model, {"c1": 0.75}, 2)
    assert cuts == [{"c1": 0.5}, {"c1": 0.5}]

    counts = []
    for cut in cuts:
        model = prune_by_ratio(model, cut)
        counts.append(_counts(model))

    # 16 -> round(16 * (4 / 16) ** 0.5) = 8 -> 4; the others untouched.
    assert counts == [{"c1": 8, "c2": 16, "d1": 32}, {"c1": 4, "c2": 16, "d1": 32}]
    assert counts[-1] == _counts(prune_by_ratio(_two_convs(), {"c1": 0.75}))


def test_three_steps_end_exactly_at_the_single_cut_counts():
    model = _two_convs()
    allocation = {"c1": 0.75, "c2": 0.0, "d1": 0.6}
    cuts = gradual_ratios(model, allocation, 3)
    assert len(cuts) == 3 and all(set(cut) == {"c1", "d1"} for cut in cuts)

    counts = []
    for cut in cuts:
        model = prune_by_ratio(model, cut)
        counts.append(_counts(model))

    # c1 keeps 4 of 16: round(16 * 0.25 ** (1/3)) = 10, round(16 * 0.25 ** (2/3)) = 6, 4.
    # d1 keeps 32 - floor(19.2) = 13: round(32 * (13/32) ** (1/3)) = 24, then 18, then 13.
    assert counts == [{"c1": 10, "c2": 16, "d1": 24}, {"c1": 6, "c2": 16, "d1": 18},
                      {"c1": 4, "c2": 16, "d1": 13}]
    assert counts[-1] == _counts(prune_by_ratio(_two_convs(), allocation))


def test_three_steps_down_to_four_of_thirty_two():
    cuts = gradual_ratios(_two_convs(), {"d1": 0.875}, 3)
    assert cuts == [{"d1": 0.5}, {"d1": 0.5}, {"d1": 0.5}]


def test_steps_that_remove_nothing_are_left_out():
    model = _two_convs()
    # c1 keeps 15 of 16: round(16 * (15/16) ** (k/4)) = 16, 15, 15, 15 (steps 1, 3, 4 empty).
    assert gradual_ratios(model, {"c1": 0.0625}, 4) == [{"c1": 1 / 16}]
    # d1 keeps 24 of 32: round(32 * 0.75 ** (k/4)) = 30, 28, 26, then 24.
    assert gradual_ratios(model, {"c1": 0.0625, "d1": 0.25}, 4) == [
        {"d1": 2 / 32}, {"c1": 1 / 16, "d1": 2 / 30}, {"d1": 2 / 28}, {"d1": 2 / 26}]
    assert gradual_ratios(model, {"d1": 0.03}, 2) == []  # floor(0.03 * 32) = 0.


def test_group_sizes_against_counts_by_hand():
    model = _two_convs()
    # Shapes: c1 -> 4x4x16, c2 -> 2x2x16, flat 64, d1 32, out 3.
    # c1 loses 8 filters of 3x3x2 (+ bias) and c2 their 8 input slices of 3x3x16.
    # c2 loses 8 filters of 3x3x16 (+ bias) and d1 their 8 * 2 * 2 rows of 32 units.
    # d1 loses 16 units of 64 inputs (+ bias) and out their 16 rows of 3.
    expected = {"c1": 8 * 19 + 8 * 9 * 16, "c2": 8 * 145 + 8 * 4 * 32, "d1": 16 * 65 + 16 * 3}
    assert group_sizes(model, 0.5) == expected
    assert model.count_params() == (9 * 2 * 16 + 16) + (9 * 16 * 16 + 16) + (64 * 32 + 32) + 99


def test_group_sizes_of_the_tiny_cnn(make_tiny_cnn):
    assert group_sizes(make_tiny_cnn(), 0.75) == CNN_SIZES_75


@pytest.mark.parametrize("value, expected", [
    ((0.5, 0.25), (0.25, 0.5)),
    ([0.75, 0.125, 0.5], (0.125, 0.5, 0.75)),
    ((), ()),
    ([], ()),
    ([np.float32(0.5), 1 / 3], (1 / 3, 0.5)),
])
def test_check_channel_ratios_sorts(value, expected):
    ratios = check_channel_ratios("channel_ratios", value)
    assert ratios == pytest.approx(expected) and isinstance(ratios, tuple)
    assert all(type(r) is float for r in ratios)


@pytest.mark.parametrize("value", [(0,), (1.0,), (0.5, 0.5), ("0.5",), [True], (-0.25,),
                                   (float("nan"),), 0.5, "0.5", None, np.array([0.5])])
def test_check_channel_ratios_refuses(value):
    message = (f"Received: channel_ratios={value!r}; expected a list of distinct fractions in "
               "(0, 1) (an empty list skips structured pruning).")
    with pytest.raises(ValueError, match=re.escape(message)):
        check_channel_ratios("channel_ratios", value)


def test_group_sensitivity_against_direct_accuracy(trained, dataset):
    before = [w.copy() for w in trained.get_weights()]

    def accuracy(model):
        predicted = np.argmax(model.predict(dataset.x_val, verbose=0), axis=1)
        return float(np.mean(predicted == dataset.y_val))

    # A learning rate of 1e-12 leaves each probe as pruned: its drop is the pruned model's.
    baseline, drops = group_sensitivity(trained, dataset, ratios=(0.5, 0.875), epochs=1,
                                        batch_size=64, learning_rate=1e-12)

    assert baseline == pytest.approx(accuracy(trained), abs=1e-6)
    assert sorted(drops) == ["conv", "dense"]
    for group, by_ratio in drops.items():
        assert sorted(by_ratio) == [0.5, 0.875]
        for ratio, drop in by_ratio.items():
            pruned = prune_by_ratio(trained, {group: ratio})
            assert drop == pytest.approx(baseline - accuracy(pruned), abs=1e-6)
    for old, new in zip(before, trained.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


class _PrunePlan:
    """Stands in for `CompressionPlan`: applies each step, without fine-tuning or exporting."""

    batch_size = 16
    loss = "sparse_categorical_crossentropy"

    def __init__(self):
        self.epochs = []

    def fine_tune(self, model, step, x, y):
        self.epochs.append(step.epochs)
        return SimpleNamespace(model=step.apply(model))

    def run_step(self, model, step, dataset, output_dir, *, name):
        self.epochs.append(step.epochs)
        pruned = step.apply(model)
        return SimpleNamespace(name=name, model=pruned,
                               metrics={"size_bytes": 4 * pruned.count_params()})


class _Recorder:
    """The search's callbacks: ``add`` runs and records, ``within`` accepts by name."""

    def __init__(self, accepted, failing=()):
        self.accepted, self.failing = set(accepted), set(failing)
        self.tried, self.stages, self.said = [], {}, []

    def add(self, name, make):
        stage = make()
        self.tried.append(name)
        self.stages[name] = stage
        return None if name in self.failing else stage

    def within(self, stage):
        return stage is not None and stage.name in self.accepted

    def search(self, dataset, output_dir, *, plan=None, ratios=RATIOS, epochs=1, steps=1,
               max_pushes=2, objective=None):
        return StructuredSearch(
            plan or _PrunePlan(), dataset, output_dir, ratios=ratios, criterion="l1",
            epochs=epochs, steps=steps, probe_epochs=1, probe_learning_rate=1e-3,
            max_pushes=max_pushes, seed=0, add=self.add, within=self.within,
            objective=objective or (lambda stage: stage.metrics["size_bytes"]),
            say=self.said.append)


def _channels_of(stage):
    return {"conv": stage.model.get_layer("conv").filters,
            "dense": stage.model.get_layer("dense").units}


def _fixed_sensitivity(monkeypatch, sensitivity):
    def fake(model, dataset, *, ratios, **kwargs):
        assert all(set(by_ratio) == set(ratios) for by_ratio in sensitivity.values())
        return 1.0, sensitivity

    monkeypatch.setattr(_auto_structured, "group_sensitivity", fake)


def _ties(monkeypatch):
    _fixed_sensitivity(monkeypatch, {g: dict.fromkeys(RATIOS, 0.0) for g in ("conv", "dense")})


def test_search_end_to_end_raises_levels_then_pushes(trained, dataset, tmp_path):
    before = [w.copy() for w in trained.get_weights()]
    recorder = _Recorder({"structured_25", "structured_push1"})
    plan = CompressionPlan([], export_mode="float32", batch_size=16)

    result = recorder.search(dataset, tmp_path, plan=plan, max_pushes=1).run(trained)

    assert recorder.tried == ["structured_25", "structured_50", "structured_push1"]
    assert recorder.said == [
        "[compress] structured sensitivity of 2 channel groups at [0.25, 0.5, 0.75]"]
    assert result.channels == {"conv": 8, "dense": 32}
    assert {g: sorted(r) for g, r in result.sensitivity.items()} == {
        "conv": list(RATIOS), "dense": list(RATIOS)}
    # The least sensitive group at 0.5 goes first; ties: the one removing more parameters.
    pushed = min(result.sensitivity,
                 key=lambda g: (result.sensitivity[g][0.5], -CNN_SIZES_75[g]))
    assert result.best is recorder.stages["structured_push1"]
    assert result.allocation == {"conv": 0.25, "dense": 0.25, pushed: 0.5}
    assert result.notes == []
    kept = {"conv": 8 - int(8 * result.allocation["conv"]),
            "dense": 32 - int(32 * result.allocation["dense"])}
    assert _channels_of(result.best) == kept
    assert _channels_of(recorder.stages["structured_25"]) == {"conv": 6, "dense": 24}
    assert _channels_of(recorder.stages["structured_50"]) == {"conv": 4, "dense": 16}
    assert (tmp_path / "structured_push1.tflite").is_file()
    assert result.best.metrics["size_bytes"] < recorder.stages["structured_25"].metrics[
        "size_bytes"]
    for old, new in zip(before, trained.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_push_equal_to_a_measured_level_is_not_trained_again(trained, dataset, tmp_path,
                                                              monkeypatch):
    # At 0.75 dense is less sensitive: pushed first; then conv to 0.75 would be the refused
    # uniform 0.75 level: its decision stands, nothing is trained, and no group is left.
    _fixed_sensitivity(monkeypatch, {"conv": {0.25: 0.0, 0.5: 0.0, 0.75: 0.03},
                                     "dense": {0.25: 0.0, 0.5: 0.0, 0.75: 0.02}})
    recorder = _Recorder({"structured_25", "structured_50", "structured_push1"})

    result = recorder.search(dataset, tmp_path, max_pushes=5).run(trained)

    assert recorder.tried == ["structured_25", "structured_50", "structured_75",
                              "structured_push1"]
    assert _channels_of(recorder.stages["structured_push1"]) == {"conv": 4, "dense": 8}
    assert result.best is recorder.stages["structured_push1"]
    assert result.allocation == {"conv": 0.5, "dense": 0.75}


def test_pushes_follow_sensitivity_in_gradual_cuts(trained, dataset, tmp_path, monkeypatch):
    # From 0.25: conv is less sensitive at 0.5 (push 1); then dense at 0.5 would be the
    # refused uniform 0.5 level (not trained again, dense stays), so conv goes to 0.75
    # (push 2); max_pushes=2 ends the search though push 2 held.
    _fixed_sensitivity(monkeypatch, {"conv": {0.25: 0.0, 0.5: 0.01, 0.75: 0.05},
                                     "dense": {0.25: 0.0, 0.5: 0.02, 0.75: 0.05}})
    recorder = _Recorder({"structured_25", "structured_push1", "structured_push2"})
    plan = _PrunePlan()

    result = recorder.search(dataset, tmp_path, plan=plan, epochs=5, steps=2).run(trained)

    assert recorder.tried == ["structured_25", "structured_50", "structured_push1",
                              "structured_push2"]
    assert _channels_of(recorder.stages["structured_push1"]) == {"conv": 4, "dense": 24}
    assert _channels_of(recorder.stages["structured_push2"]) == {"conv": 2, "dense": 24}
    assert result.best is recorder.stages["structured_push2"]
    assert result.allocation == {"conv": 0.75, "dense": 0.25}
    # Each candidate in two cuts of 5 // 2 = 2 epochs, then the rest (3).
    assert plan.epochs == [2, 3] * 4


@pytest.mark.parametrize("max_pushes, trained_pushes", [(None, 4), (5, 5)])
def test_pushes_default_to_two_per_group(trained, dataset, tmp_path, monkeypatch, max_pushes,
                                         trained_pushes):
    # Every push holds and six are possible (two groups, three levels above 0.25 each):
    # None allows 2 x 2 groups = 4, an explicit 5 allows 5.
    ratios = (0.25, 0.5, 0.75, 0.875)
    _fixed_sensitivity(monkeypatch, {g: dict.fromkeys(ratios, 0.0) for g in ("conv", "dense")})
    pushes = [f"structured_push{k}" for k in range(1, 7)]
    recorder = _Recorder({"structured_25", *pushes})

    result = recorder.search(dataset, tmp_path, ratios=ratios,
                             max_pushes=max_pushes).run(trained)

    assert recorder.tried == ["structured_25", "structured_50", *pushes[:trained_pushes]]
    assert result.best is recorder.stages[pushes[trained_pushes - 1]]
    assert sorted(result.allocation.values()) == (
        [0.5, 0.875] if trained_pushes == 4 else [0.75, 0.875])


def test_every_level_held_leaves_nothing_to_push(trained, dataset, tmp_path, monkeypatch):
    _ties(monkeypatch)
    recorder = _Recorder({"structured_25", "structured_50", "structured_75"})

    result = recorder.search(dataset, tmp_path).run(trained)

    assert recorder.tried == ["structured_25", "structured_50", "structured_75"]
    assert result.best is recorder.stages["structured_75"]
    assert result.allocation == {"conv": 0.75, "dense": 0.75}
    assert _channels_of(result.best) == {"conv": 2, "dense": 8}


def test_push_larger_by_the_objective_is_rejected(trained, dataset, tmp_path, monkeypatch):
    _ties(monkeypatch)
    recorder = _Recorder({"structured_25", "structured_push1"})

    result = recorder.search(dataset, tmp_path, objective=lambda s: -s.metrics["size_bytes"]
                             ).run(trained)

    # All tie: dense removes more parameters at 0.75 (3168 to 3132), so it goes first; it
    # stays where it is after its refusal, and conv is tried (and refused) next.
    assert recorder.tried == ["structured_25", "structured_50", "structured_push1",
                              "structured_push2"]
    assert _channels_of(recorder.stages["structured_push1"]) == {"conv": 6, "dense": 16}
    assert _channels_of(recorder.stages["structured_push2"]) == {"conv": 4, "dense": 24}
    assert result.best is recorder.stages["structured_25"]
    assert result.allocation == {"conv": 0.25, "dense": 0.25}


def test_stage_failed_alone_counts_as_rejected(trained, dataset, tmp_path, monkeypatch):
    _ties(monkeypatch)
    accepted = {"structured_25", "structured_50", "structured_push1"}
    level = _Recorder(accepted, failing={"structured_50"})
    push = _Recorder(accepted, failing={"structured_push1"})

    result = level.search(dataset, tmp_path).run(trained)
    # The objective would raise on None: it is not asked about a failed push.
    pushed = push.search(dataset, tmp_path).run(trained)

    # Ties: dense (more parameters) is pushed first, from 0.25 to 0.5, then to 0.75.
    assert level.tried == ["structured_25", "structured_50", "structured_push1",
                           "structured_push2"]
    assert result.best is level.stages["structured_push1"]
    assert result.allocation == {"conv": 0.25, "dense": 0.5}
    assert push.tried == ["structured_25", "structured_50", "structured_75", "structured_push1",
                          "structured_push2"]
    assert pushed.best is push.stages["structured_50"]
    assert pushed.allocation == {"conv": 0.5, "dense": 0.5}


def test_nothing_within_budget(trained, dataset, tmp_path, monkeypatch):
    _ties(monkeypatch)
    recorder = _Recorder(set())

    result = recorder.search(dataset, tmp_path).run(trained)

    assert recorder.tried == ["structured_25"]
    assert result.best is None and result.allocation == {}
    assert result.notes == ["structured: no channel ratio stayed within the budget"]
    assert result.channels == {"conv": 8, "dense": 32}


def test_no_prunable_group_skips(dataset, tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(),
                              L.Dense(3, activation="softmax")])
    recorder = _Recorder({"structured_25"})

    result = recorder.search(dataset, tmp_path).run(model)

    assert result.best is None and recorder.tried == [] and result.allocation == {}
    assert result.notes == [
        "structured: skipped, no group of channels can be removed (every one reaches a model "
        "output)"]


def test_unsupported_layer_skips_with_its_name(dataset, tmp_path):
    inp = keras.Input((8, 8, 1))
    hidden = L.Dense(4, name="hidden")(L.Flatten()(inp))
    twice = L.Lambda(lambda t: t * 2, name="twice")(hidden)
    model = keras.Model(inp, L.Dense(3, activation="softmax")(twice))
    recorder = _Recorder({"structured_25"})

    result = recorder.search(dataset, tmp_path).run(model)

    assert result.best is None and recorder.tried == []
    assert len(result.notes) == 1
    assert result.notes[0].startswith("structured: skipped, Received: layer 'twice' (Lambda)")
    assert recorder.said == [f"[compress] {result.notes[0]}"]


def test_ratio_removing_no_channel_does_not_crash(trained, dataset, tmp_path, monkeypatch):
    _fixed_sensitivity(monkeypatch, {"conv": {0.03: 0.0}, "dense": {0.03: 0.0}})
    recorder = _Recorder({"structured_3"})

    result = recorder.search(dataset, tmp_path, ratios=(0.03,)).run(trained)

    assert recorder.tried == []  # floor(0.03 * 8) = floor(0.03 * 32) = 0: nothing to cut
    assert result.channels == {"conv": 8, "dense": 32}
