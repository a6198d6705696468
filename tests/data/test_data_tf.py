from __future__ import annotations

import numpy as np
import pytest

from keras_autoopt._backend import tf
from keras_autoopt.data import DatasetError, from_arrays, from_tf_dataset


def _pipeline(x, y):
    return tf.data.Dataset.from_tensor_slices((x, y))


def test_unbatched_and_batched_give_the_same_dataset(make_class_arrays):
    x, y = make_class_arrays(shape=(6, 6, 1), dtype=np.float32)
    unbatched = from_tf_dataset(_pipeline(x, y))
    batched = from_tf_dataset(_pipeline(x, y).batch(7))
    reference = from_arrays(x, y, name="tf.data")
    for data in (unbatched, batched):
        assert (
            data.summary()
            == reference.summary()
            == {
                "name": "tf.data",
                "n_train": 20,
                "n_val": 5,
                "n_test": 5,
                "input_shape": [6, 6, 1],
                "num_classes": 3,
            }
        )
        assert np.array_equal(data.x_test, reference.x_test)
        assert np.array_equal(data.y_train, reference.y_train)


def test_one_hot_batched_and_unbatched(make_class_arrays):
    x, y = make_class_arrays(shape=(6, 6, 1), dtype=np.float32)
    one_hot = np.eye(4, dtype=np.float32)[y]  # width 4: num_classes comes from it
    for pipeline in (_pipeline(x, one_hot), _pipeline(x, one_hot).batch(8)):
        data = from_tf_dataset(pipeline)
        assert data.num_classes == 4
        assert np.array_equal(np.sort(np.concatenate([data.y_train, data.y_val, data.y_test])), y)


def test_tabular_unbatched_one_hot_vs_batched_labels():
    y = np.repeat(np.arange(3), 10)
    x = np.random.default_rng(0).random((30, 5)).astype(np.float32)
    one_hot = from_tf_dataset(_pipeline(x, np.eye(3)[y]))  # x (5,), y (3,): unbatched
    labels = from_tf_dataset(_pipeline(x, y).batch(4))  # x (None, 5), y (None,): batched
    assert one_hot.input_shape == labels.input_shape == (5,)
    assert one_hot.num_classes == labels.num_classes == 3


def test_given_val_and_test_are_kept_missing_one_is_carved(make_class_arrays):
    x, y = make_class_arrays(n_per_class=20, shape=(6, 6, 1), dtype=np.float32)
    val = _pipeline(x[:6], y[:6]).batch(2)
    test = _pipeline(x[6:12], y[6:12])
    data = from_tf_dataset(_pipeline(x, y), val=val, test=test, name="mine")
    assert data.name == "mine"
    assert np.array_equal(data.x_train, x)
    assert np.array_equal(data.x_val, x[:6]) and np.array_equal(data.y_test, y[6:12])
    carved = from_tf_dataset(_pipeline(x, y), test=test, val_fraction=0.25)
    assert (carved.summary()["n_train"], carved.summary()["n_val"]) == (45, 15)


def test_ambiguous_batching_needs_batched_argument(make_class_arrays):
    x, y = make_class_arrays(shape=(5,), dtype=np.float32)  # x (5,), y (5,) once batched
    pipeline = _pipeline(x, y).batch(5, drop_remainder=True)
    with pytest.raises(DatasetError, match=r"pass batched=True or batched=False"):
        from_tf_dataset(pipeline)
    assert from_tf_dataset(pipeline, batched=True).input_shape == (5,)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ([1, 2, 3], r"Received: train of type builtins\.list; expected a tf\.data\.Dataset"),
        (np.zeros((4, 2)), r"Received: train of type numpy\.ndarray; expected a tf\.data\.Dataset"),
    ],
)
def test_wrong_type(train, message):
    with pytest.raises(DatasetError, match=message):
        from_tf_dataset(train)


def test_wrong_type_for_val(make_class_arrays):
    x, y = make_class_arrays(shape=(6, 6, 1), dtype=np.float32)
    with pytest.raises(DatasetError, match=r"Received: val of type builtins\.tuple"):
        from_tf_dataset(_pipeline(x, y), val=(x, y))


def test_elements_must_be_pairs(make_class_arrays):
    x, y = make_class_arrays(shape=(6, 6, 1), dtype=np.float32)
    with pytest.raises(DatasetError, match=r"expected \(x, y\) pairs of dense tensors"):
        from_tf_dataset(tf.data.Dataset.from_tensor_slices(x))
    with pytest.raises(DatasetError, match=r"expected \(x, y\) pairs of dense tensors"):
        from_tf_dataset(tf.data.Dataset.from_tensor_slices((x, y, y)))


def test_infinite_and_empty_pipelines(make_class_arrays):
    x, y = make_class_arrays(shape=(6, 6, 1), dtype=np.float32)
    with pytest.raises(
        DatasetError, match=r"Received: train that repeats forever \(cardinality is infinite\)"
    ):
        from_tf_dataset(_pipeline(x, y).repeat())
    with pytest.raises(DatasetError, match=r"Received: train with no elements"):
        from_tf_dataset(_pipeline(x, y).take(0))


def test_data_errors_are_reported_like_from_arrays(make_class_arrays):
    x, y = make_class_arrays(shape=(6, 6, 1), dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(DatasetError, match=r"1 NaN or infinite values"):
        from_tf_dataset(_pipeline(x, y))
    with pytest.raises(DatasetError, match=r"Received: val_fraction=0; expected a float"):
        from_tf_dataset(_pipeline(x, y), val_fraction=0)
    with pytest.raises(DatasetError, match=r"Received: batched='yes'"):
        from_tf_dataset(_pipeline(x, y), batched="yes")
