"""Shared fixtures: fixed seeds for every test, tiny data sets."""

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


@pytest.fixture
def tiny_images():
    """A separable 3-class problem on 8x8x1 images: 90 train / 30 test."""
    rng = np.random.default_rng(0)
    n = 120
    y = np.arange(n) % 3
    x = rng.normal(0.0, 0.1, size=(n, 8, 8, 1)).astype("float32")
    for k in range(3):
        x[y == k, :, k * 2 : k * 2 + 3, 0] += 1.0
    return x[:90], y[:90].astype("int64"), x[90:], y[90:].astype("int64")
