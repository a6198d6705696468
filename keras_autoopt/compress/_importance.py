"""Importance of each output channel of a model's prunable groups, for structured pruning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_autoopt._backend import keras, tf
from keras_autoopt._rules import CHANNEL_CRITERIA
from keras_autoopt.compress._channel_graph import _L, _SEPARABLE, _Analysis, _analyze, _shape

#: Importance criteria of `channel_importance`.
CRITERIA = CHANNEL_CRITERIA

#: Batches (of `TAYLOR_BATCH_SIZE` samples) the "taylor" criterion reads from arrays.
TAYLOR_BATCHES = 4
TAYLOR_BATCH_SIZE = 32


def _l_norm(layer: keras.layers.Layer, order: int) -> np.ndarray:
    kernel = layer.get_weights()[1 if type(layer) in _SEPARABLE else 0].astype("float64")
    flat = kernel.reshape(-1, kernel.shape[-1])
    return np.abs(flat).sum(axis=0) if order == 1 else np.sqrt((flat ** 2).sum(axis=0))


def _bn_scale(a: _Analysis, name: str) -> np.ndarray:
    for consumer in a.consumers[name]:
        layer = a.layers[consumer]
        if type(layer) is _L.BatchNormalization and getattr(layer, "gamma", None) is not None:
            return np.abs(layer.gamma.numpy().astype("float64"))
    raise ValueError(
        f"Received: criterion='bn_scale' for layer {name!r}, whose output is read by no "
        "BatchNormalization with scale=True; expected every pruned producer to be followed "
        "directly by one (use criterion='l1' otherwise).")


def _batches(data: Any) -> list[tuple[Any, Any]]:
    if isinstance(data, tf.data.Dataset):
        return [(item[0], item[1]) for item in data.take(TAYLOR_BATCHES)]
    x, y = data
    x, y = np.asarray(x), np.asarray(y)
    count = min(len(x), TAYLOR_BATCHES * TAYLOR_BATCH_SIZE)
    return [(x[i:i + TAYLOR_BATCH_SIZE], y[i:i + TAYLOR_BATCH_SIZE])
            for i in range(0, count, TAYLOR_BATCH_SIZE)]


def _taylor(a: _Analysis, names: list[str], data: Any) -> dict[str, np.ndarray]:
    graph = a.graph
    outputs = [a.layers[name].output for name in names]
    probe = keras.Model(graph.inputs, [*outputs, *graph.outputs])
    scores = {name: np.zeros(_shape(a.layers[name])[-1]) for name in names}
    for x, y in _batches(data):
        x, y = tf.nest.map_structure(tf.convert_to_tensor, (x, y))
        with tf.GradientTape() as tape:
            values = probe(x, training=False)
            acts, preds = values[:len(names)], values[len(names):]
            y_pred = preds[0] if len(preds) == 1 else list(preds)
            loss = a.model.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, acts)
        for name, act, grad in zip(names, acts, grads, strict=True):
            if grad is None:
                continue
            value = np.abs(act.numpy().astype("float64") * grad.numpy().astype("float64"))
            scores[name] += value.reshape(-1, value.shape[-1]).sum(axis=0)
    return scores


def _check_criterion(criterion: Any) -> str:
    if criterion not in CRITERIA:
        raise ValueError(f"Received: criterion={criterion!r}; expected one of {list(CRITERIA)}.")
    return criterion


def _check_data(model: keras.Model, criterion: str, data: Any) -> None:
    if criterion != "taylor":
        return
    if getattr(model, "compiled_loss", None) is None:
        raise ValueError(
            f"Received: criterion='taylor' for model {model.name!r}, which is not compiled; "
            "expected a compiled model (its loss gives the gradients).")
    if data is None:
        raise ValueError("Received: data=None with criterion='taylor'; expected data=(x, y) "
                         "arrays or a tf.data.Dataset of (x, y) batches.")
    if isinstance(data, tf.data.Dataset):
        return
    sizes = None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        try:
            sizes = (len(data[0]), len(data[1]))
        except TypeError:
            sizes = None
    if sizes is None or sizes[0] == 0 or sizes[0] != sizes[1]:
        raise ValueError(
            f"Received: data of type {type(data).__name__}; expected data=(x, y) with as many "
            "samples (at least one) in x as in y, or a tf.data.Dataset of (x, y) batches.")


def _importance(a: _Analysis, criterion: str, data: Any,
                leaders: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Scores of the prunable groups (those led by ``leaders`` only, if given)."""
    groups = {leader: members for leader, members in a.prunable().items()
              if leaders is None or leader in leaders}
    names = [name for members in groups.values() for name in members]
    if criterion == "taylor":
        per_layer = _taylor(a, names, data)
    elif criterion == "bn_scale":
        per_layer = {name: _bn_scale(a, name) for name in names}
    else:
        order = 1 if criterion == "l1" else 2
        per_layer = {name: _l_norm(a.layers[name], order) for name in names}
    return {leader: np.sum([per_layer[name] for name in members], axis=0)
            for leader, members in groups.items()}


def channel_importance(model: keras.Model, criterion: str = "l1", data: Any = None
                       ) -> dict[str, np.ndarray]:
    """Score each output channel of every prunable group of ``model``.

    Criteria:

    - ``"l1"`` / ``"l2"``: the L1 / L2 norm of each output channel's kernel
      (the pointwise kernel of a separable convolution; biases left out).
    - ``"bn_scale"``: ``|gamma|`` of the ``BatchNormalization`` directly reading
      the producer (network slimming); an error if a producer has none.
    - ``"taylor"``: ``|activation x d loss / d activation|`` of the producer's
      output, summed over samples and positions, over the first
      `TAYLOR_BATCHES` batches of `TAYLOR_BATCH_SIZE` samples of ``data``
      (or of its batches for a dataset), with the model's compiled loss.

    A group's score is the sum of its members' scores.

    Args:
        model: A built Sequential or functional tf_keras model (see `prune_channels`).
        criterion: One of `CRITERIA`.
        data: ``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` batches; needed
            (only) by ``"taylor"``.

    Returns:
        ``{group leader name: float64 array of one score per channel}``, for the groups
        that can be pruned (leader: the group's first producer in layer order).

    Raises:
        ValueError: For an unknown criterion, ``"bn_scale"`` without a following
            batch norm, ``"taylor"`` without data or on a model not compiled, and
            the models `prune_channels` refuses.
        UnsupportedLayerError: As `prune_channels`.
    """
    criterion = _check_criterion(criterion)
    _check_data(model, criterion, data)
    return _importance(_analyze(model), criterion, data)
