"""Shared fixtures: fixed seeds for every test, tiny data sets and models, Pareto references.

The fixtures other than the seeds are session-scoped, so module-scoped
fixtures (a model trained once per file) can use them too; `tiny_images`
hands out read-only arrays, so no test can change them for the next one
(copy to modify). The ``make_*`` fixtures, `beats` and `front_by_enumeration`
are functions (pytest runs with ``--import-mode=importlib``: tests cannot
import helpers from this file).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import keras_autoopt  # noqa: F401  (sets up tf_keras before TensorFlow is used)
from keras_autoopt._backend import keras, tf


@pytest.fixture(autouse=True)
def _fixed_seeds():
    random.seed(0)
    np.random.seed(0)
    tf.random.set_seed(0)
    keras.backend.clear_session()
    yield


def _separable_images(n: int = 120, noise: float = 0.1, seed: int = 0):
    """``n`` 8x8x1 images, labels 0, 1, 2 in turn; class k brightens columns 2k to 2k+2."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0.0, noise, size=(n, 8, 8, 1)).astype("float32")
    for k in range(3):
        x[y == k, :, k * 2 : k * 2 + 3, 0] += 1.0
    return x, y.astype("int64")


def _class_arrays(n_per_class=10, classes=3, shape=(4, 4, 1), dtype=np.float64, seed=0):
    """Uniform random samples of ``shape``, ``n_per_class`` of each label, sorted by label."""
    y = np.repeat(np.arange(classes), n_per_class).astype(np.int64)
    x = np.random.default_rng(seed).random((len(y), *shape)).astype(dtype)
    return x, y


@pytest.fixture(scope="session")
def make_tiny_images():
    """The recipe of `tiny_images` as a function: ``(n=120, noise=0.1, seed=0) -> (x, y)``.

    ``x`` is float32 of shape ``(n, 8, 8, 1)``, ``y`` int64 class indices; the
    classes are separable (a small dense or conv model learns them in a few
    epochs). Each call returns new, writable arrays.
    """
    return _separable_images


@pytest.fixture(scope="session")
def tiny_images(make_tiny_images):
    """A separable 3-class problem on 8x8x1 images: 90 train / 30 test (read-only arrays)."""
    x, y = make_tiny_images()
    x.flags.writeable = False
    y.flags.writeable = False
    return x[:90], y[:90], x[90:], y[90:]


@pytest.fixture(scope="session")
def make_class_arrays():
    """Random, unlearnable samples with balanced labels, for the data loaders' tests.

    Call as ``make_class_arrays(n_per_class=10, classes=3, shape=(4, 4, 1),
    dtype=np.float64, seed=0) -> (x, y)``: ``x`` uniform in [0, 1) of
    ``dtype``, ``y`` int64 labels sorted by class (``n_per_class`` of each).
    """
    return _class_arrays


def _tiny_classifier(hidden=None, input_shape=(8, 8, 1), classes=3):
    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    if hidden:
        layers.append(keras.layers.Dense(hidden, activation="relu"))
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    return keras.Sequential(layers)


@pytest.fixture(scope="session")
def make_tiny_classifier():
    """A new, uncompiled softmax classifier for `tiny_images`-shaped inputs.

    Call as ``make_tiny_classifier(hidden=None, input_shape=(8, 8, 1),
    classes=3)``: Flatten, an optional ReLU Dense layer of ``hidden`` units,
    then a softmax Dense layer of ``classes`` units.
    """
    return _tiny_classifier


def _beats(u, v, directions):
    """``u`` is at least as good as ``v`` in every objective and strictly better in one."""
    triples = list(zip(u, v, directions, strict=True))
    at_least = all((x <= y) if d == "min" else (x >= y) for x, y, d in triples)
    strictly = any((x < y) if d == "min" else (x > y) for x, y, d in triples)
    return at_least and strictly


def _front_by_enumeration(points, directions):
    """The indices of the Pareto front, ascending, by comparing every pair of rows.

    Rows holding a NaN or an infinity are left out of both sides (as
    `keras_autoopt.search.pareto_front` documents).
    """
    rows = [tuple(float(v) for v in row) for row in points]
    finite = [i for i, row in enumerate(rows) if all(np.isfinite(v) for v in row)]
    return [i for i in finite if not any(_beats(rows[j], rows[i], directions) for j in finite)]


@pytest.fixture(scope="session")
def beats():
    """Pareto dominance written out by hand: ``beats(u, v, directions) -> bool``.

    ``directions`` holds ``"min"`` or ``"max"`` per objective. A reference
    for the package's `dominates` and Pareto fronts that does not use them.
    """
    return _beats


@pytest.fixture(scope="session")
def front_by_enumeration():
    """The Pareto front by brute force: ``front_by_enumeration(points, directions) -> [i]``."""
    return _front_by_enumeration


def pytest_collection_modifyitems(config, items):
    """Run the long end-to-end (``slow``) tests first.

    With ``pytest -n 2`` (the README's test command) each worker then starts
    on one of them and the short tests fill in behind, instead of a long test
    starting last and running alone. The order of the other tests is kept.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
