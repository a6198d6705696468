from __future__ import annotations

import json
import os
import random
from importlib.metadata import version

import numpy as np
import pytest

from keras_autoopt.data import Dataset, DatasetError, load_dataset

mnist1d_data = pytest.importorskip("mnist1d.data")


def _reference(**changes):
    """The package's own ``make_dataset`` with ``get_dataset_args()`` changed as given."""
    args = mnist1d_data.get_dataset_args()
    for key, value in changes.items():
        setattr(args, key, value)
    return mnist1d_data.make_dataset(args)


def _row_keys(x: np.ndarray) -> list[bytes]:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return [row.tobytes() for row in x.reshape(len(x), -1)]


@pytest.fixture(scope="module")
def published() -> Dataset:
    return load_dataset("mnist1d")


@pytest.fixture(scope="module")
def reference() -> dict:
    return _reference()


def test_mnist1d_sizes_shapes_dtypes(published):
    summary = published.summary()
    assert {k: summary[k] for k in ("name", "n_train", "n_val", "n_test", "input_shape")} == {
        "name": "mnist1d",
        "n_train": 3400,
        "n_val": 600,
        "n_test": 1000,
        "input_shape": [40, 1],
    }
    assert published.num_classes == 10
    assert published.class_names == tuple("0123456789")
    for split in ("train", "val", "test"):
        x, y = getattr(published, f"x_{split}"), getattr(published, f"y_{split}")
        assert x.dtype == np.float32 and x.shape[1:] == (40, 1)
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_mnist1d_test_split_is_the_published_one_exactly(published, reference):
    assert np.array_equal(published.x_test[..., 0], reference["x_test"].astype(np.float32))
    assert np.array_equal(published.y_test, reference["y_test"])


def test_mnist1d_train_and_val_are_the_published_train_split(published, reference):
    # Every published training signal is in exactly one of train / val, with its label.
    index = {key: i for i, key in enumerate(_row_keys(reference["x"]))}
    assert len(index) == 4000
    rows = np.concatenate([published.x_train, published.x_val])
    labels = np.concatenate([published.y_train, published.y_val])
    where = [index[key] for key in _row_keys(rows)]
    assert sorted(where) == list(range(4000))
    assert np.array_equal(labels, reference["y"][where])


def test_mnist1d_values_are_not_rescaled(published, reference):
    # The generator standardises all 5,000 signals together; the loader keeps that.
    everything = np.concatenate([reference["x"], reference["x_test"]])
    assert abs(everything.mean()) < 1e-9 and abs(everything.std() - 1) < 1e-9
    assert published.x_train.min() < -4 and published.x_train.max() > 4


def test_mnist1d_validation_split_is_stratified(published):
    train_counts = np.bincount(published.y_train, minlength=10)
    val_counts = np.bincount(published.y_val, minlength=10)
    # 15% of each class of the 4,000 published training signals, to within one signal.
    expected = 0.15 * (train_counts + val_counts)
    assert np.all(np.abs(val_counts - expected) <= 1)
    assert val_counts.sum() == 600


def test_mnist1d_is_deterministic_and_the_seed_moves_only_validation(published):
    again = load_dataset("mnist1d", seed=0)
    for attr in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(again, attr), getattr(published, attr))
    other = load_dataset("mnist1d", seed=1, val_fraction=0.25)
    assert (len(other.x_train), len(other.x_val)) == (3000, 1000)
    assert np.array_equal(other.x_test, published.x_test)
    assert not np.array_equal(other.x_val[:600], published.x_val)


def test_mnist1d_generator_seed_gives_the_generators_fresh_data_set(published):
    fresh = load_dataset("mnist1d", generator_seed=7)
    reference = _reference(seed=7)
    assert np.array_equal(fresh.x_test[..., 0], reference["x_test"].astype(np.float32))
    assert np.array_equal(fresh.y_test, reference["y_test"])
    assert not set(_row_keys(fresh.x_train)) & set(_row_keys(published.x_train))
    assert fresh.summary()["provenance"]["args"]["seed"] == 7


def test_mnist1d_larger_test_set_is_generated_balanced_and_disjoint(published, reference):
    data = load_dataset("mnist1d", test_samples=2000)
    # Train and validation are untouched.
    assert np.array_equal(data.x_train, published.x_train)
    assert np.array_equal(data.x_val, published.x_val)
    assert data.x_test.shape == (2000, 40, 1) and data.x_test.dtype == np.float32
    assert np.array_equal(np.bincount(data.y_test), np.full(10, 200))
    # No identical signal in train + validation.
    train_rows = set(_row_keys(np.concatenate([data.x_train, data.x_val])))
    assert not train_rows & set(_row_keys(data.x_test))
    assert len(set(_row_keys(data.x_test))) == 2000

    test = data.summary()["provenance"]["test"]
    assert test["source"] == "generated" and test["n"] == 2000 and test["seed"] != 42
    # The same signals as make_dataset with that seed, rescaled with the training
    # set's statistics: an affine map whose slope is the ratio of the two
    # standard deviations, which make_dataset reveals through its ``t``
    # (t = t_raw / std, with the same t_raw for every seed).
    own = _reference(seed=test["seed"], num_samples=2000, train_split=1.0)
    assert np.array_equal(data.y_test, own["y"])
    slope, intercept = np.polyfit(own["x"].ravel(), data.x_test.ravel().astype(np.float64), 1)
    ratios = reference["t"] / own["t"]
    assert np.allclose(ratios, ratios[0])
    assert slope == pytest.approx(ratios[0], rel=1e-5)
    assert np.allclose(own["x"] * slope + intercept, data.x_test[..., 0], atol=1e-5)
    assert abs(data.x_test.mean()) < 0.05 and abs(data.x_test.std() - 1) < 0.05


def test_mnist1d_provenance_in_summary(published):
    summary = published.summary()
    json.dumps(summary)  # reports write it as JSON
    provenance = summary["provenance"]
    args = mnist1d_data.get_dataset_args(as_dict=True)
    del args["url"]
    assert provenance["args"] == json.loads(json.dumps(args))
    assert provenance["mnist1d_version"] == version("mnist1d")
    assert provenance["generator"] == "mnist1d.data.make_dataset"
    assert provenance["test"] == {"source": "published", "n": 1000}
    assert provenance["train"] == {
        "n": 4000,
        "val_fraction": 0.15,
        "val_seed": 0,
        "stratified": True,
    }
    summary["provenance"]["args"]["seed"] = 0  # a copy: the data set keeps its record
    assert published.summary()["provenance"]["args"]["seed"] == 42


def test_mnist1d_leaves_global_rng_alone_and_uses_no_network_or_files(monkeypatch, tmp_path):
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.chdir(tmp_path)
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(3), random.random())
    np.random.seed(123)
    random.seed(123)
    load_dataset("mnist1d", val_fraction=0.1)
    assert np.array_equal(np.random.rand(3), expected[0]) and random.random() == expected[1]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"test_fraction": 0.2},
            r"Received: test_fraction=0\.2 for the built-in data set 'mnist1d'; expected no "
            r"test_fraction: mnist1d keeps its published 4,000 / 1,000 train/test split",
        ),
        ({"test_samples": 0}, r"Received: test_samples=0; expected an integer in \[10, "),
        ({"test_samples": 15}, r"Received: test_samples=15; expected a multiple of 10"),
        ({"test_samples": True}, r"Received: test_samples=True; expected an integer"),
        ({"test_samples": 2_000_000}, r"Received: test_samples=2000000; expected an integer in"),
        ({"test_samples": "1000"}, r"Received: test_samples='1000'; expected an integer"),
        ({"generator_seed": -1}, r"Received: generator_seed=-1; expected an integer in \[0, "),
        ({"generator_seed": 2**32}, r"Received: generator_seed=4294967296; expected"),
        ({"generator_seed": 1.5}, r"Received: generator_seed=1\.5; expected an integer"),
        ({"val_fraction": 1.0}, r"Received: val_fraction=1\.0; expected a float in \(0, 1\)"),
        ({"val_fraction": 0}, r"Received: val_fraction=0; expected a float in \(0, 1\)"),
        ({"seed": -1}, r"Received: seed=-1; expected an integer in \[0, 2\*\*32\)\."),
        (
            {"image_size": (8, 8)},
            r"Received: unexpected keyword arguments \['image_size'\] for the built-in data "
            r"set 'mnist1d'; expected only seed, val_fraction, test_samples and generator_seed\.",
        ),
    ],
)
def test_mnist1d_bad_arguments_are_refused_before_generating(kwargs, message, monkeypatch):
    from keras_autoopt.data import _mnist1d

    def fail(*args, **kwargs):
        raise AssertionError("generated before checking the arguments")

    monkeypatch.setattr(_mnist1d, "_generate_raw", fail)
    with pytest.raises(DatasetError, match=message):
        load_dataset("mnist1d", **kwargs)


def test_mnist1d_derived_test_seed_differs_from_the_generator_seed():
    from keras_autoopt.data._mnist1d import derive_test_seed

    seeds = [derive_test_seed(s) for s in (0, 1, 42, 2**32 - 1)]
    assert len(set(seeds)) == 4 and all(
        t != s for t, s in zip(seeds, (0, 1, 42, 2**32 - 1), strict=True)
    )
    assert all(0 <= t < 2**32 for t in seeds)
    assert derive_test_seed(42) == derive_test_seed(42)


def test_mnist1d_refuses_a_generated_test_signal_equal_to_a_training_one(monkeypatch):
    from keras_autoopt.data import _mnist1d

    real = _mnist1d._generate_raw
    calls = []

    def duplicate_first_training_signal(args):
        x, y = real(args)
        calls.append((x, y))
        if len(calls) == 2:  # the generated test set: plant the first training signal
            x = x.copy()
            x[0] = calls[0][0][0]
        return x, y

    monkeypatch.setattr(_mnist1d, "_generate_raw", duplicate_first_training_signal)
    with pytest.raises(DatasetError, match=r"Generated 1 test signals identical to training"):
        load_dataset("mnist1d", test_samples=10)


def test_dataset_provenance_is_checked_and_detached():
    parts = {
        f"{xy}_{split}": (np.zeros((2, 3), np.float32) if xy == "x" else np.array([0, 1], np.int64))
        for split in ("train", "val", "test")
        for xy in ("x", "y")
    }
    record = {"args": {"seed": 1}}
    data = Dataset(name="t", num_classes=2, provenance=record, **parts)
    record["args"]["seed"] = 2
    assert data.summary()["provenance"] == {"args": {"seed": 1}}
    assert "provenance" not in Dataset(name="t", num_classes=2, **parts).summary()
    with pytest.raises(DatasetError, match="Received: provenance=.*; expected None or a mapping"):
        Dataset(name="t", num_classes=2, provenance=[1], **parts)
    with pytest.raises(DatasetError, match="Received: provenance that is not JSON-serialisable"):
        Dataset(name="t", num_classes=2, provenance={"a": object()}, **parts)
    with pytest.raises(DatasetError, match="not JSON-serialisable"):
        Dataset(name="t", num_classes=2, provenance={"a": float("nan")}, **parts)
