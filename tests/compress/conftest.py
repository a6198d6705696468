"""Shared fixtures of the compression tests: a tiny CNN and a `Dataset` of separable images.

They are fixtures that return functions (pytest runs with ``--import-mode=importlib``: tests
cannot import helpers from this file).
"""

from __future__ import annotations

import pytest

from keras_autoopt._backend import keras
from keras_autoopt.data import Dataset


def _tiny_cnn(name=None):
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(32, activation="relu", name="dense"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ], name=name)


@pytest.fixture(scope="session")
def make_tiny_cnn():
    """A new, uncompiled CNN for `make_tiny_images`-shaped inputs: ``make_tiny_cnn(name=None)``.

    Layers ``conv`` (8 filters, 3x3, ReLU), ``pool`` (2x2 max), ``flatten``, ``dense`` (32,
    ReLU) and ``out`` (3-way softmax): every kind each compression step wraps.
    """
    return _tiny_cnn


@pytest.fixture(scope="session")
def make_tiny_dataset(make_tiny_images):
    """``make_tiny_dataset(n, seed, n_train, n_val) -> Dataset`` named "tiny" of 3 classes.

    ``make_tiny_images(n=n, seed=seed)`` split in order: the first ``n_train`` samples to train,
    the next ``n_val`` to validate, the rest to test.
    """

    def make(n, seed, n_train, n_val) -> Dataset:
        x, y = make_tiny_images(n=n, seed=seed)
        val_end = n_train + n_val
        return Dataset(
            "tiny", x[:n_train], y[:n_train], x[n_train:val_end], y[n_train:val_end],
            x[val_end:], y[val_end:], 3,
        )

    return make


@pytest.fixture(scope="session")
def train_tiny_cnn():
    """``train_tiny_cnn(dataset, epochs, name=None)``: a `make_tiny_cnn` model, trained.

    Seeded (``keras.utils.set_random_seed(0)``) before it is built, then compiled with Adam and
    sparse categorical cross-entropy and fitted on ``dataset``'s training split (batch 16).
    """

    def train(dataset, epochs, name=None):
        keras.utils.set_random_seed(0)
        model = _tiny_cnn(name)
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        model.fit(dataset.x_train, dataset.y_train, epochs=epochs, batch_size=16, verbose=0)
        return model

    return train


@pytest.fixture(scope="module")
def dataset(make_tiny_dataset):
    """The `auto_compress` tests' data: 240 separable images, 150 train / 45 validation.

    Module-scoped (one per test file); a file may define its own ``dataset``.
    """
    return make_tiny_dataset(n=240, seed=1, n_train=150, n_val=45)


@pytest.fixture(scope="module")
def trained(dataset, train_tiny_cnn):
    """`make_tiny_cnn` trained 6 epochs on ``dataset``, named ``tiny_cnn``."""
    return train_tiny_cnn(dataset, epochs=6, name="tiny_cnn")
