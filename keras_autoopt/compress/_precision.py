"""Mixed precision training before compression.

TF-MOT's wrappers break under mixed policies (TF-MOT #409 for
``mixed_float16``; ``PruneLowMagnitude`` raises a TypeError under
``mixed_bfloat16`` on this stack). The design: train the float model under
the mixed policy, then rebuild it in float32 with the same weights and
compress that. Variables are float32 under a mixed policy anyway, so the
round trip is exact.
"""

from __future__ import annotations

from typing import Any

from keras_autoopt._backend import keras
from keras_autoopt._graph import check_graph_model

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def with_policy(model: keras.Model, policy: str) -> keras.Model:
    """Return a copy of ``model`` whose layers compute under ``policy``.

    The last layer keeps ``float32`` (softmax outputs stay numerically safe,
    as the Keras mixed precision guide recommends). Weights are copied.

    Args:
        model: A Sequential or functional model.
        policy: ``"float32"`` or one of `MIXED_POLICIES`.

    Returns:
        The copy (not compiled).

    Raises:
        ValueError: For an unknown policy or a subclassed model.
    """
    if policy not in ("float32", *MIXED_POLICIES):
        raise ValueError(
            f"Received: policy={policy!r}; expected 'float32' or one of {MIXED_POLICIES}.")
    check_graph_model("model", model, "its layers are rebuilt under the policy")
    last = model.layers[-1]

    def clone(layer):
        config: dict[str, Any] = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "float32" if layer is last else policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def train_mixed_precision(model: keras.Model, x, y, *, policy: str = "mixed_float16",
                          epochs: int = 1, batch_size: int = 32, learning_rate: float = 1e-3,
                          loss: str = "sparse_categorical_crossentropy",
                          validation_data=None, verbose: int = 0) -> keras.Model:
    """Train ``model`` under a mixed policy and return it rebuilt in float32.

    Compile under ``mixed_float16`` wraps the optimizer in a
    ``LossScaleOptimizer`` (tf_keras does so by itself).

    Args:
        model: The float model (not modified).
        x: Training inputs.
        y: Training labels.
        policy: One of `MIXED_POLICIES`.
        epochs: Training epochs (>= 1).
        batch_size: Batch size.
        learning_rate: Adam learning rate.
        loss: The loss.
        validation_data: Optional ``(x, y)``.
        verbose: ``fit`` verbosity.

    Returns:
        A float32 model with the trained weights, ready for TF-MOT.

    Raises:
        ValueError: For a policy that is not mixed, or bad counts.
    """
    if policy not in MIXED_POLICIES:
        raise ValueError(f"Received: policy={policy!r}; expected one of {MIXED_POLICIES}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"Received: epochs={epochs!r}; expected a positive integer.")
    mixed = with_policy(model, policy)
    mixed.compile(keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    mixed.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
              verbose=verbose)
    return with_policy(mixed, "float32")
