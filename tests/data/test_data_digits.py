from __future__ import annotations

import numpy as np
import pytest

from keras_autoopt.data import Dataset, DatasetError, load_dataset


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_digits_sizes_shapes_and_range(digits):
    assert isinstance(digits, Dataset)
    assert digits.summary() == dict(
        name="digits", n_train=1257, n_val=270, n_test=270, input_shape=[8, 8, 1], num_classes=10
    )
    assert digits.input_shape == (8, 8, 1)
    assert digits.class_names == tuple("0123456789")
    for x, y in (
        (digits.x_train, digits.y_train),
        (digits.x_val, digits.y_val),
        (digits.x_test, digits.y_test),
    ):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (8, 8, 1)
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))


def test_digits_splits_are_disjoint_and_cover_all_samples(digits):
    from sklearn.datasets import load_digits

    rows = np.concatenate([digits.x_train, digits.x_val, digits.x_test]).reshape(-1, 64)
    original = (load_digits().images / 16.0).astype(np.float32).reshape(-1, 64)
    assert len(rows) == 1797
    # Same multiset of samples: sort rows lexicographically and compare.
    assert np.array_equal(np.unique(rows, axis=0), np.unique(original, axis=0))
    assert np.array_equal(
        np.bincount(np.concatenate([digits.y_train, digits.y_val, digits.y_test])),
        np.bincount(load_digits().target),
    )


def test_digits_same_seed_same_split_other_seed_other_split(digits):
    again = load_dataset("digits", seed=0)
    assert np.array_equal(again.x_train, digits.x_train)
    assert np.array_equal(again.y_val, digits.y_val)
    assert np.array_equal(again.x_test, digits.x_test)
    other = load_dataset("digits", seed=1)
    assert other.summary() == digits.summary()
    assert not np.array_equal(other.x_test, digits.x_test)
    assert not np.array_equal(other.x_val, digits.x_val)


def test_digits_split_is_stratified(digits):
    total = (
        np.bincount(np.concatenate([digits.y_train, digits.y_val, digits.y_test]), minlength=10)
        / 1797
    )
    for y in (digits.y_train, digits.y_val, digits.y_test):
        share = np.bincount(y, minlength=10) / len(y)
        assert np.max(np.abs(share - total)) < 0.005


def test_digits_custom_fractions():
    data = load_dataset("digits", val_fraction=0.1, test_fraction=0.2)
    assert (data.summary()["n_val"], data.summary()["n_test"]) == (180, 360)
    assert data.summary()["n_train"] == 1797 - 180 - 360


def test_digits_arrays_are_read_only(digits):
    with pytest.raises(ValueError, match="read-only"):
        digits.x_train[0, 0, 0, 0] = 5.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_fraction": 1.5}, r"Received: val_fraction=1\.5; expected a float in \(0, 1\)\."),
        ({"test_fraction": 0}, r"Received: test_fraction=0; expected a float in \(0, 1\)\."),
        ({"val_fraction": True}, r"Received: val_fraction=True; expected a float"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"val_fraction \+ test_fraction < 1"),
        ({"seed": -1}, r"Received: seed=-1; expected an integer in \[0, 2\*\*32\)\."),
        ({"seed": 1.5}, r"Received: seed=1\.5; expected an integer"),
    ],
)
def test_load_dataset_bad_split_arguments(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset("digits", **kwargs)


def test_load_dataset_unknown_name_lists_what_is_accepted():
    with pytest.raises(
        DatasetError,
        match=r"Received: name_or_path='mnist' \(no such file or folder\); expected a built-in "
        r"data set name \('digits', 'mnist1d'\), the path of a \.npz file, or an existing folder",
    ):
        load_dataset("mnist")


def test_load_dataset_wrong_type():
    with pytest.raises(DatasetError, match="Received: name_or_path of type int; expected"):
        load_dataset(3)


def test_load_dataset_rejects_kwargs_for_builtin():
    with pytest.raises(
        DatasetError, match=r"unexpected keyword arguments \['image_size'\] for the built-in"
    ):
        load_dataset("digits", image_size=(8, 8))


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)
