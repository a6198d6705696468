"""The one check of "a Sequential or functional tf_keras model", shared by every wrapper."""

from __future__ import annotations

from typing import Any

from keras_autoopt._backend import keras


def check_graph_model(name: str, model: Any, why: str) -> keras.Model:
    """Return ``model`` if it is a Sequential or functional tf_keras model, else raise.

    TF-MOT wrappers, distillation features and policy clones all need the
    model's layer graph, which subclassed models do not expose.

    Args:
        name: Argument name used in the message.
        model: The value received.
        why: Why the graph is needed, ending the message.

    Returns:
        The model.

    Raises:
        ValueError: For anything else, naming the argument and what it got.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"Received: {name} of type {type(model).__name__}; expected a Sequential or "
            f"functional tf_keras model ({why}).")
    if not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)):
        raise ValueError(
            f"Received: {name}={model.name!r} of type {type(model).__name__}, a subclassed "
            f"model; expected a Sequential or functional tf_keras model ({why}).")
    return model
