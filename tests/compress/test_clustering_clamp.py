"""A layer too sparse for TF-MOT's minimum cluster count stays unclustered, not a crash."""

from __future__ import annotations

import numpy as np
import pytest

import keras_autoopt as ka
from keras_autoopt._backend import keras


@pytest.mark.parametrize(("preserve_sparsity", "nonzero", "wrapped", "clamped"), [
    (True, 1, False, 2),   # zero centroid + 1 value: TF-MOT needs > 2 with preserve_sparsity
    (True, 2, True, 3),    # 3 feasible clusters
    (False, 1, True, None),  # without preserve_sparsity all 12 weights are candidates
])
def test_a_nearly_empty_kernel_is_left_alone(preserve_sparsity, nonzero, wrapped, clamped):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d"),
                              keras.layers.Dense(2, name="out")])
    kernel = np.zeros((4, 3), "float32")
    kernel.flat[:nonzero] = np.arange(1, nonzero + 1)
    model.get_layer("d").set_weights([kernel, np.zeros(3, "float32")])
    step = ka.ClusteringStep(8, preserve_sparsity=preserve_sparsity)
    clustered = step.apply(model)
    names = [type(layer).__name__ for layer in clustered.layers]
    assert (names[0] == "ClusterWeights") is wrapped
    assert step.clamped.get("d") == clamped
