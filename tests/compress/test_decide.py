"""Paired accuracy decisions: `paired_drop`, its bounds, `check_confidence`, `tflite_correct`.

Every expected figure is derived here by hand (literals, exact fractions) or with numpy
from the per-sample differences, not with the module's formula.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from keras_autoopt._backend import keras
from keras_autoopt.compress._decide import check_confidence, paired_drop, tflite_correct
from keras_autoopt.export import export_tflite

Z80 = 0.8416212335729143  # Standard normal quantile at 0.8.
Z90 = 1.6448536269514722  # ... at 0.95 (two-sided 90 %).
Z95 = 1.959963984540054  # ... at 0.975 (two-sided 95 %).


def _results(n, wrong):
    correct = np.ones(n, dtype=bool)
    correct[list(wrong)] = False
    return correct


def test_ten_samples_by_hand():
    # Baseline wrong on sample 9 only; the candidate wrong on 0 and 1, right on 9.
    result = paired_drop(_results(10, [9]), _results(10, [0, 1]))

    assert (result.n, result.worse, result.better) == (10, 2, 1)
    assert result.drop == pytest.approx(0.1, rel=1e-15)
    # d = (1, 1, 0, ..., 0, -1): mean 0.1, mean of squares 0.3, variance 0.29.
    assert result.se == pytest.approx(math.sqrt(0.029), rel=1e-12)
    assert result.se == pytest.approx(0.17029386365926402, rel=1e-12)


def test_bounds_and_dict_with_270_samples():
    # Worse on 1, 2, 3; better on 0 (the baseline misses it, the candidate does not).
    result = paired_drop(_results(270, [0]), _results(270, [1, 2, 3]))

    assert (result.n, result.worse, result.better) == (270, 3, 1)
    assert result.drop == pytest.approx(2 / 270, rel=1e-15)
    # Variance of d: 4/270 - (2/270)^2 = 1076/72900; se^2 = that / 270.
    se = math.sqrt(Fraction(1076, 72900 * 270))
    assert result.se == pytest.approx(se, rel=1e-12)
    drop = 2 / 270
    assert result.upper(0.5) == result.drop
    assert result.upper(0.8) == pytest.approx(drop + Z80 * se, rel=1e-12)
    low, high = result.interval(0.95)
    assert low == pytest.approx(drop - Z95 * se, rel=1e-12)
    assert high == pytest.approx(drop + Z95 * se, rel=1e-12)
    assert result.interval() == (low, high)
    assert result.to_dict() == {"drop": result.drop, "se": result.se, "n": 270, "worse": 3,
                                "better": 1, "ci95": [low, high]}
    ci90 = result.to_dict(0.9)["ci90"]
    assert ci90 == pytest.approx([drop - Z90 * se, drop + Z90 * se], rel=1e-12)
    assert set(result.to_dict(0.9)) == {"drop", "se", "n", "worse", "better", "ci90"}


def test_candidate_better_gives_negative_drop():
    result = paired_drop(_results(10, [3, 4]), _results(10, []))

    assert (result.worse, result.better) == (0, 2)
    assert result.drop == pytest.approx(-0.2, rel=1e-15)
    # d has two -1: variance 0.2 - 0.04 = 0.16, se = 0.4 / sqrt(10).
    assert result.se == pytest.approx(0.4 / math.sqrt(10), rel=1e-12)
    assert result.upper(0.8) < 0


@pytest.mark.parametrize("n", [1, 7, 270])
def test_identical_results_floor_the_variance_at_one_discordant_sample(n):
    base = np.arange(n) % 3 != 0
    result = paired_drop(base, base.copy())

    assert (result.drop, result.worse, result.better, result.n) == (0.0, 0, 0, n)
    # One discordant sample: variance 1/n, se = sqrt(1/n / n) = 1/n.
    assert result.se == pytest.approx(1 / n, rel=1e-12)
    assert result.upper(0.5) == 0.0
    assert result.upper(0.8) == pytest.approx(Z80 / n, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_numpy_on_random_results(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    base = rng.random(n) < 0.9
    cand = np.where(rng.random(n) < 0.1, ~base, base)
    d = base.astype(int) - cand.astype(int)
    assert np.count_nonzero(d) >= 1

    result = paired_drop(base, cand)

    assert result.n == n
    assert result.worse == int(np.sum(d == 1)) and result.better == int(np.sum(d == -1))
    assert result.drop == pytest.approx(d.mean(), rel=1e-12, abs=1e-15)
    assert result.se == pytest.approx(d.std() / math.sqrt(n), rel=1e-9)


def test_accepts_lists_integers_and_columns():
    base = [[1], [1], [0], [1]]
    cand = np.array([True, False, True, False])

    result = paired_drop(base, cand)

    assert (result.n, result.worse, result.better) == (4, 2, 1)
    assert result.drop == pytest.approx(0.25, rel=1e-15)


@pytest.mark.parametrize("base, cand, counts", [
    ([True, False, True], [True, False], (3, 2)),
    ([], [], (0, 0)),
    ([True], [], (1, 0)),
])
def test_empty_or_different_lengths_refused(base, cand, counts):
    message = (f"Received: {counts[0]} baseline and {counts[1]} candidate results; expected "
               "the same, non-zero number of samples.")
    with pytest.raises(ValueError, match=re.escape(message)):
        paired_drop(np.array(base, dtype=bool), np.array(cand, dtype=bool))


@pytest.mark.parametrize("value", [0.4, 1.0, 1, 0, True, float("nan"), float("inf"), "0.8",
                                   None, -0.9])
def test_check_confidence_refuses(value):
    message = (f"Received: confidence={value!r}; expected a confidence level in [0.5, 1) "
               "(0.5: the point estimate alone).")
    with pytest.raises(ValueError, match=re.escape(message)):
        check_confidence("confidence", value)


def test_check_confidence_accepts_and_names_the_argument():
    assert check_confidence("confidence", 0.5) == 0.5
    assert check_confidence("confidence", 0.95) == 0.95
    value = check_confidence("confidence", np.float64(0.9))
    assert value == 0.9 and type(value) is float
    with pytest.raises(ValueError, match=r"^Received: level=2; expected a confidence level"):
        check_confidence("level", 2)


def test_tflite_correct_matches_keras(make_tiny_dataset, train_tiny_cnn, tmp_path):
    dataset = make_tiny_dataset(n=120, seed=3, n_train=60, n_val=30)
    model = train_tiny_cnn(dataset, epochs=1)
    path = tmp_path / "model.tflite"
    export_tflite(model, path, mode="float32")
    x, y = dataset.x_test, dataset.y_test
    expected = np.argmax(model.predict(x, verbose=0), axis=1) == y

    correct = tflite_correct(path, x, y)

    assert correct.dtype == bool and correct.shape == (len(y),)
    np.testing.assert_array_equal(correct, expected)
    np.testing.assert_array_equal(tflite_correct(str(path), x, y.reshape(-1, 1)), expected)


def test_tflite_correct_reads_one_sigmoid_output_as_class_one(tmp_path):
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1, activation="sigmoid")])
    x = np.random.default_rng(5).normal(size=(40, 5)).astype("float32")
    y = np.random.default_rng(6).integers(0, 2, size=40)
    path = tmp_path / "binary.tflite"
    export_tflite(model, path, mode="float32")
    expected = (model.predict(x, verbose=0)[:, 0] > 0.5).astype(int) == y
    assert 0 < expected.sum() < 40

    np.testing.assert_array_equal(tflite_correct(path, x, y), expected)
