from __future__ import annotations

import numpy as np
import pytest

from keras_autoopt.data import DatasetError, from_arrays


def test_from_arrays_splits_and_converts(make_class_arrays):
    x, y = make_class_arrays()
    data = from_arrays(x, y, name="toy", class_names=["a", "b", "c"])
    assert data.summary() == dict(
        name="toy", n_train=20, n_val=5, n_test=5, input_shape=[4, 4, 1], num_classes=3
    )
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.class_names == ("a", "b", "c")
    # Every class appears in every split.
    for labels in (data.y_train, data.y_val, data.y_test):
        assert set(labels.tolist()) == {0, 1, 2}
    # The three splits partition the samples.
    rows = np.concatenate([data.x_train, data.x_val, data.x_test]).reshape(30, -1)
    assert np.array_equal(
        np.unique(rows, axis=0), np.unique(x.astype(np.float32).reshape(30, -1), axis=0)
    )


def test_from_arrays_is_deterministic_per_seed(make_class_arrays):
    x, y = make_class_arrays()
    a, b = from_arrays(x, y, seed=3), from_arrays(x, y, seed=3)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    c = from_arrays(x, y, seed=4)
    assert not np.array_equal(a.x_test, c.x_test)


def test_from_arrays_tabular_and_uint8_not_rescaled():
    y = np.repeat([0, 1], 10)
    x = np.tile(np.arange(20, dtype=np.uint8)[:, None] * 10, (1, 3))
    data = from_arrays(x, y)
    assert data.input_shape == (3,)
    assert data.x_train.dtype == np.float32
    assert data.x_train.max() > 1.0  # uint8 values are kept as is


def test_from_arrays_one_hot_and_column_labels(make_class_arrays):
    x, y = make_class_arrays(classes=4)
    one_hot = np.eye(5)[y]  # width 5: one class never seen
    data = from_arrays(x, one_hot)
    assert data.num_classes == 5
    assert np.array_equal(np.sort(np.concatenate([data.y_train, data.y_val, data.y_test])), y)
    column = from_arrays(x, y[:, None].astype(np.float64))
    assert column.num_classes == 4


def test_from_arrays_num_classes_larger_than_labels(make_class_arrays):
    x, y = make_class_arrays()
    assert from_arrays(x, y, num_classes=7).num_classes == 7


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros(30), r"Received: x with shape \(30,\); expected at least 2-D"),
        (np.array([["a"]] * 30), r"Received: x with dtype <U1; expected a numeric"),
        ("abc", r"Received: x of type str; expected a numeric array"),
    ],
)
def test_from_arrays_rejects_bad_x(x, message):
    with pytest.raises(DatasetError, match=message):
        from_arrays(x, np.zeros(30))


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.zeros(29), r"Received: x with 30 samples and y with 29; expected the same number"),
        (np.array(["a"] * 30), r"Received: y with dtype <U1; expected integer class indices"),
        (np.full(30, 0.5), r"y with non-integer float values"),
        (-np.ones(30), r"y containing label -1; expected class indices >= 0"),
        (np.full((30, 3), 0.5), r"y with shape \(30, 3\) that is not one-hot"),
        (np.zeros((30, 2, 2)), r"y with shape \(30, 2, 2\); expected 1-D class indices"),
        (np.zeros(30), r"training labels with 1 distinct class \(\[0\]\); expected at least 2"),
    ],
)
def test_from_arrays_rejects_bad_y(y, message):
    with pytest.raises(DatasetError, match=message):
        from_arrays(np.zeros((30, 2)), y)


def test_from_arrays_num_classes_must_match_one_hot_width():
    with pytest.raises(DatasetError, match=r"num_classes=4 with one-hot labels of width 3"):
        from_arrays(np.zeros((30, 2)), np.eye(3)[np.arange(30) % 3], num_classes=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"num_classes": 2},
            r"Received: num_classes=2 but labels up to 2; expected num_classes >= 3",
        ),
        ({"num_classes": 1}, r"Received: num_classes=1; expected None or an integer >= 2"),
        ({"class_names": ["a"]}, r"class_names with 1 names; expected num_classes=3"),
        ({"val_fraction": 1.5}, r"Received: val_fraction=1\.5; expected a float in \(0, 1\)\."),
        ({"test_fraction": -0.1}, r"Received: test_fraction=-0\.1; expected a float in \(0, 1\)\."),
        ({"name": 5}, r"Received: name=5; expected a non-empty string"),
    ],
)
def test_from_arrays_rejects_bad_options(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        from_arrays(np.zeros((30, 2)), np.arange(30) % 3, **kwargs)


def test_from_arrays_nan(make_class_arrays):
    x, y = make_class_arrays()
    x[3, 0, 0, 0] = np.nan
    x[4, 1, 0, 0] = np.inf
    with pytest.raises(DatasetError, match=r"Received: x with 2 NaN or infinite values"):
        from_arrays(x, y)


def test_from_arrays_float64_overflow_is_not_finite(make_class_arrays):
    x, y = make_class_arrays()
    x[0, 0, 0, 0] = 1e300
    with pytest.raises(DatasetError, match=r"1 NaN or infinite values \(as float32\)"):
        from_arrays(x, y)


def test_from_arrays_too_few_samples_per_class_names_class_and_count(make_class_arrays):
    x, y = make_class_arrays(n_per_class=10)
    keep = np.r_[0:10, 10:13, 20:30]  # class 1 keeps 3 samples
    with pytest.raises(
        DatasetError,
        match=r"Too few samples per class in 'arrays' for a stratified split with "
        r"test_fraction=0\.15 and val_fraction=0\.15: class 1 \('b'\) has 3 samples; expected "
        r"at least 7 samples per class",
    ):
        from_arrays(x[keep], y[keep], class_names=["a", "b", "c"])


def test_from_arrays_minimum_per_class_follows_fractions(make_class_arrays):
    x, y = make_class_arrays(n_per_class=4)
    data = from_arrays(x, y, val_fraction=0.25, test_fraction=0.25)
    assert (data.summary()["n_val"], data.summary()["n_test"]) == (3, 3)
    with pytest.raises(
        DatasetError,
        match=r"class 0 has 4 samples, class 1 has 4 samples, class 2 has 4 samples; "
        r"expected at least 7",
    ):
        from_arrays(x, y)
