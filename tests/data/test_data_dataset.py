from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from keras_autoopt.data import Dataset, DatasetError


def _parts(n=(6, 3, 3), shape=(4,), classes=3):
    out = {}
    for split, count in zip(("train", "val", "test"), n, strict=True):
        out[f"x_{split}"] = np.zeros((count, *shape), np.float32)
        out[f"y_{split}"] = (np.arange(count) % classes).astype(np.int64)
    return out


def test_valid_dataset_summary_and_repr():
    data = Dataset(name="t", num_classes=3, class_names=["a", "b", "c"], **_parts())
    assert data.input_shape == (4,)
    assert data.class_names == ("a", "b", "c")
    assert data.summary() == {
        "name": "t",
        "n_train": 6,
        "n_val": 3,
        "n_test": 3,
        "input_shape": [4],
        "num_classes": 3,
    }
    assert repr(data) == (
        "Dataset(name='t', n_train=6, n_val=3, n_test=3, input_shape=(4,), num_classes=3)"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"


def test_dataset_leaves_caller_arrays_writable():
    parts = _parts()
    data = Dataset(name="t", num_classes=3, **parts)
    assert parts["x_train"].flags.writeable
    assert not data.x_train.flags.writeable


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_val": np.zeros((3, 4), np.float64)}, r"x_val with dtype float64; expected float32"),
        ({"y_test": np.zeros(3, np.int32)}, r"y_test with dtype int32 and shape \(3,\)"),
        (
            {"x_test": np.zeros((3, 5), np.float32)},
            r"x_test with sample shape \(5,\); expected \(4,\)",
        ),
        ({"y_train": np.zeros(5, np.int64)}, r"x_train with 6 samples and y_train with 5"),
        (
            {"y_val": np.array([0, 1, 3])},
            r"y_val containing label 3; expected class indices in \[0, 3\)",
        ),
        ({"y_val": np.array([0, -1, 2])}, r"y_val containing label -1"),
        (
            {"x_val": np.zeros((0, 4), np.float32), "y_val": np.zeros(0, np.int64)},
            r"x_val with 0 samples; expected a non-empty split",
        ),
        (
            {"x_train": np.full((6, 4), np.nan, np.float32)},
            r"x_train with 24 NaN or infinite values",
        ),
        (
            {"x_train": np.zeros(6, np.float32)},
            r"x_train with shape \(6,\); expected \(N, \*input_shape\)",
        ),
        ({"x_train": [[0.0]] * 6}, r"x_train of type list; expected a numpy.ndarray"),
        ({"num_classes": 1}, r"Received: num_classes=1; expected an integer >= 2"),
        ({"num_classes": "3"}, r"Received: num_classes='3'; expected an integer >= 2"),
        ({"class_names": ("a", "b")}, r"class_names with 2 names; expected num_classes=3"),
        ({"class_names": "abc"}, r"Received: class_names='abc'; expected None or a list/tuple"),
        ({"class_names": ("a", "a", "b")}, r"expected distinct class names"),
        ({"name": ""}, r"Received: name=''; expected a non-empty string"),
    ],
)
def test_dataset_validation(change, message):
    kwargs = {"name": "t", "num_classes": 3, **_parts()}
    kwargs.update(change)
    with pytest.raises(DatasetError, match=message):
        Dataset(**kwargs)
