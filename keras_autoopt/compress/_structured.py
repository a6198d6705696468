"""Structured pruning: remove whole filters, channels and units, giving a smaller model.

Magnitude pruning (TF-MOT) zeroes weights, but the exported ``.tflite`` still
stores every one of them. Structured pruning removes output channels of
*producer* layers (``Conv1D`` / ``Conv2D`` / ``Conv3D`` filters, the pointwise
filters of ``SeparableConv1D`` / ``SeparableConv2D``, ``Dense`` units) and
rebuilds a new, smaller model of the same layer types, names and activations,
holding exactly the surviving weights.

Removing a channel touches every layer that reads it. `prune_channels` walks
the model's graph (Sequential or functional, channels last) and follows each
producer's channels through:

* layers that keep channels 1:1 (pooling, global pooling, ``Activation``,
  ``ReLU``, ``Dropout``, padding, cropping, up-sampling, ...): passed through;
* ``BatchNormalization`` / ``LayerNormalization`` over the last axis: their
  per-channel weights are sliced, channels passed through;
* ``DepthwiseConv1D`` / ``DepthwiseConv2D`` (``depth_multiplier=1``): the
  depthwise kernel and bias are sliced, channels passed through;
* ``Add`` / ``Subtract`` / ``Multiply`` / ``Average`` / ``Maximum`` /
  ``Minimum`` (and a ``Concatenate`` along another axis): the producers of
  their inputs form one *group* that keeps the same channel indices;
* ``Concatenate`` along the last axis: each input's channels at their offset;
* ``Flatten``: channel ``c`` at spatial position ``s`` of an ``(..., C)``
  tensor is element ``s * C + c`` of the flat vector;
* ``Reshape`` keeping the last axis (``target_shape[-1]`` unchanged);
* the next producer: the input-channel axis of its kernel is sliced.

Channels that reach a model output, or a layer that mixes channels in a way
that cannot be sliced (a ``Reshape`` of the channel axis, a depthwise
convolution with ``depth_multiplier > 1``, a grouped convolution, a
``Concatenate`` of unknown widths, ...), are *pinned*: their group is never
pruned. Any other layer class (``LSTM``, ``Lambda``, a user's layer, a nested
model) is refused before any work with an `UnsupportedLayerError` naming it.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt.compress._channel_graph import (
    _CONV_PRODUCERS,
    _DEPTHWISE,
    _L,
    _NORMS,
    _SEPARABLE,
    _Analysis,
    _analyze,
    _resolve_keep,
)
from keras_autoopt.compress._fold import custom_objects
from keras_autoopt.compress._importance import _check_criterion, _check_data, _importance
from keras_autoopt.compress._steps import CompressionStep


def _sliced_weights(a: _Analysis, layer: keras.layers.Layer, keep: Mapping[int, np.ndarray]
                    ) -> list[np.ndarray]:
    """``layer``'s weights with the removed input and output channels left out."""
    weights = layer.get_weights()
    kind = type(layer)
    lay_in = a.layouts[a.inputs[layer.name][0]] if a.inputs[layer.name] else None
    in_idx = a.expand(lay_in, keep) if lay_in is not None else None
    out_idx = None
    if layer.name in a.producers:
        out_idx = keep.get(a.find(a.producers[layer.name]))

    def take(array: np.ndarray, idx: np.ndarray | None, axis: int) -> np.ndarray:
        return array if idx is None else np.take(array, idx, axis=axis)

    if kind in _CONV_PRODUCERS or kind is _L.Dense:
        if layer.name not in a.producers:  # A grouped convolution: nothing reaching it is cut.
            return weights
        kernel = take(take(weights[0], in_idx, -2), out_idx, -1)
        return [kernel, *(take(w, out_idx, 0) for w in weights[1:])]
    if kind in _SEPARABLE:
        depthwise, pointwise, *bias = weights
        mult = depthwise.shape[-1]
        point_idx = None if in_idx is None else (
            in_idx[:, None] * mult + np.arange(mult)[None, :]).ravel()
        return [take(depthwise, in_idx, -2),
                take(take(pointwise, point_idx, -2), out_idx, -1),
                *(take(w, out_idx, 0) for w in bias)]
    if kind in _DEPTHWISE and layer.depth_multiplier == 1:
        return [take(weights[0], in_idx, -2), *(take(w, in_idx, 0) for w in weights[1:])]
    if kind in _NORMS:
        return [take(w, in_idx, 0) for w in weights]
    return weights


def _rebuild(a: _Analysis, keep: Mapping[int, np.ndarray]) -> keras.Model:
    """A new model like ``a.model`` without the removed channels."""
    config = copy.deepcopy(a.model.get_config())
    entries = {entry["config"]["name"]: entry for entry in config["layers"]}
    for entry in entries.values():
        # Recorded input shapes are the old ones: layers build again when called.
        entry.pop("build_config", None)
    for name, gid in a.producers.items():
        root = a.find(gid)
        if root in keep:
            key = "units" if type(a.layers[name]) is _L.Dense else "filters"
            entries[name]["config"][key] = len(keep[root])
    for name in a.reshapes:
        idx = a.expand(a.layouts[name], keep)
        if idx is not None:
            target = list(entries[name]["config"]["target_shape"])
            entries[name]["config"]["target_shape"] = [*target[:-1], len(idx)]
    custom = custom_objects(a.model)
    if isinstance(a.model, keras.Sequential):
        rebuilt = keras.Sequential.from_config(config, custom_objects=custom)
    else:
        rebuilt = keras.Model.from_config(config, custom_objects=custom)
    for layer in rebuilt.layers:
        old = a.layers.get(layer.name)
        if old is not None and old.weights:
            layer.set_weights(_sliced_weights(a, old, keep))
    return rebuilt


def prune_channels(model: keras.Model, keep: Mapping[str, Sequence[int]]) -> keras.Model:
    """Return a new, smaller model holding only the channels in ``keep``.

    The new model has the same layer types, names, configs (with the new
    ``filters`` / ``units``) and activations; every layer reading a removed
    channel loses the matching weights (see the module docstring), so a channel
    whose weights contribute nothing is removed without changing the outputs.
    It is not compiled; ``model`` is not modified.

    Args:
        model: A built Sequential or functional tf_keras model, channels last.
        keep: ``{producer layer name: channel indices to keep}``: the output
            channels (filters, units) that survive, at least one. Producers joined
            by a merge layer form a group that keeps the same channels: naming
            one member is enough. Groups not named keep every channel.

    Returns:
        The pruned model (not compiled).

    Raises:
        UnsupportedLayerError: For a layer (or nested model) that structured
            pruning does not support, before any work.
        ValueError: For a subclassed or unbuilt model, a shared layer, a name that
            is not a prunable producer (e.g. one whose channels reach a model
            output), or indices out of range, repeated or empty.
    """
    analysis = _analyze(model)
    return _rebuild(analysis, _resolve_keep(analysis, keep))


def _check_ratio(name: str, value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and 0.0 <= value < 1.0
    if not ok:
        raise ValueError(f"Received: {name}={value!r}; expected a fraction in [0, 1).")
    return float(value)


def _check_ratios(value: Any) -> float | dict[str, float]:
    if isinstance(value, Mapping):
        return {str(k): _check_ratio(f"ratio[{k!r}]", v) for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _check_ratio("ratio", value)
    raise ValueError(f"Received: ratio={value!r}; expected a fraction in [0, 1) or a mapping "
                     "of producer layer names to fractions in [0, 1).")


def _check_min_channels(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Received: min_channels={value!r}; expected an integer >= 1.")
    return int(value)


def prune_by_ratio(model: keras.Model, ratio: float | Mapping[str, float],
                   criterion: str = "l1", data: Any = None, min_channels: int = 1
                   ) -> keras.Model:
    """Remove the least important share of each prunable group's channels.

    Each group loses ``floor(ratio * channels)`` channels, those of lowest
    `channel_importance` (ties: the lower index goes first), but keeps at least
    ``min_channels`` (or all it has, if fewer). Groups that cannot be pruned (they
    reach a model output, ...) are left whole.

    Args:
        model: A built Sequential or functional tf_keras model (see `prune_channels`).
        ratio: A fraction in [0, 1) for every group, or ``{producer name: fraction}``
            for some groups (the others are left whole; any member names its group).
        criterion: One of `CRITERIA`.
        data: For ``criterion="taylor"``, see `channel_importance`.
        min_channels: The fewest channels a group keeps.

    Returns:
        The pruned model (not compiled; fine-tune it).

    Raises:
        ValueError: For a ratio outside [0, 1), a bad ``min_channels``, criterion or
            data, a ratio naming a layer that cannot be pruned, and what
            `prune_channels` refuses.
        UnsupportedLayerError: As `prune_channels`.
    """
    ratios = _check_ratios(ratio)
    criterion = _check_criterion(criterion)
    min_channels = _check_min_channels(min_channels)
    _check_data(model, criterion, data)
    analysis = _analyze(model)
    groups = analysis.prunable()
    leader_of = {name: leader for leader, members in groups.items() for name in members}
    if isinstance(ratios, dict):
        per_group: dict[str, float] = {}
        for name, value in ratios.items():
            if name not in leader_of:
                pinned = analysis.pinned()
                why = (f": {pinned[analysis.find(analysis.producers[name])]}"
                       if name in analysis.producers else "")
                raise ValueError(
                    f"Received: ratio[{name!r}]={value!r}; expected the name of a prunable "
                    f"layer of model {model.name!r}, one of {sorted(leader_of)}{why}.")
            leader = leader_of[name]
            if leader in per_group and per_group[leader] != value:
                raise ValueError(
                    f"Received: ratio[{name!r}]={value!r} for the group of {leader!r}, which "
                    f"already has ratio {per_group[leader]!r}; expected one ratio per group.")
            per_group[leader] = value
    else:
        per_group = dict.fromkeys(groups, ratios)
    leaders = [leader for leader, share in per_group.items() if share > 0]
    scores = _importance(analysis, criterion, data, leaders) if leaders else {}
    keep: dict[str, np.ndarray] = {}
    for leader, share in per_group.items():
        total = len(scores[leader]) if leader in scores else 0
        # The epsilon keeps e.g. 0.29 * 100 (28.999999999999996 in floating point) at 29.
        drop = min(math.floor(share * total + 1e-9), max(total - min_channels, 0))
        if drop > 0:
            order = np.argsort(scores[leader], kind="stable")
            keep[leader] = np.sort(order[drop:])
    return _rebuild(analysis, _resolve_keep(analysis, keep))


class StructuredPruningStep(CompressionStep):
    """A structured pruning step: `prune_by_ratio` with fixed settings, in a plan or alone.

    In a `CompressionPlan` it is the first stage (kind ``"structured"``): the
    model is pruned, then fine-tuned ``epochs`` epochs; later magnitude
    pruning, clustering and QAT stages work on the smaller model. Alone,
    `apply` returns the pruned model (not compiled, not fine-tuned). There are
    no wrappers: `strip` returns the model as it is.

    Args:
        ratio: A fraction in [0, 1) of each group's channels to remove, or
            ``{producer layer name: fraction}``.
        criterion: One of `CRITERIA` (``"taylor"`` reads the training data the
            plan passes to `apply`).
        min_channels: The fewest channels a group keeps (an integer >= 1).
        epochs: Fine-tuning epochs in `CompressionPlan.run`.
        learning_rate: Fine-tuning learning rate; None keeps the plan's.
        skip_layers: Producer layers never pruned (their whole group is kept).
        skip_unsupported: Must be False: a model structured pruning cannot
            follow is refused whole (`UnsupportedLayerError`).
    """

    kind = "structured"

    def __init__(self, ratio: float | Mapping[str, float], criterion: str = "l1",
                 min_channels: int = 1, *, epochs: int = 2, learning_rate: float | None = None,
                 skip_layers: Sequence[str] = (), skip_unsupported: bool = False):
        super().__init__(epochs=epochs, learning_rate=learning_rate, skip_layers=skip_layers,
                         skip_unsupported=False)
        if skip_unsupported:
            raise ValueError(
                "Received: skip_unsupported=True for StructuredPruningStep; expected False: "
                "channels cannot be removed around a layer it cannot follow (name it in "
                "skip_layers only if it is a producer to keep whole).")
        self.ratio = _check_ratios(ratio)
        self.criterion = _check_criterion(criterion)
        self.min_channels = _check_min_channels(min_channels)

    def __hash__(self) -> int:  # ``ratio`` may be a dict: hash the settings' JSON.
        return hash(json.dumps(self.get_config(), sort_keys=True))

    def strip(self, model: keras.Model) -> keras.Model:
        """The model itself: structured pruning adds no wrappers."""
        return model

    def layer_names(self) -> tuple[str, ...]:
        """Layer names the settings refer to (``skip_layers`` and the ratio's keys)."""
        named = tuple(self.ratio) if isinstance(self.ratio, dict) else ()
        return (*self.skip_layers, *named)

    def get_config(self) -> dict[str, Any]:
        """The step's settings, JSON-serializable."""
        ratio = dict(self.ratio) if isinstance(self.ratio, dict) else self.ratio
        config = {"ratio": ratio, "criterion": self.criterion,
                  "min_channels": self.min_channels, **self.base_config()}
        del config["skip_unsupported"]
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StructuredPruningStep:
        """The step of a `get_config` dict.

        Raises:
            ValueError: For a key that is not a setting, or a bad value.
        """
        known = {"ratio", "criterion", "min_channels", "epochs", "learning_rate",
                 "skip_layers", "skip_unsupported"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"Received: config keys {unknown}; expected only {sorted(known)}.")
        if "ratio" not in config:
            raise ValueError(f"Received: config={dict(config)!r}; expected a 'ratio' key.")
        return cls(**config)

    def apply(self, model: keras.Model, data: Any = None) -> keras.Model:
        """Return ``model`` pruned by `prune_by_ratio` (not compiled, not fine-tuned).

        Args:
            model: A built Sequential or functional model (see `prune_channels`).
            data: ``(x, y)`` for the ``"taylor"`` criterion; ignored by the others.
        """
        self._check_layer_names(model)
        ratio = self.ratio
        if self.skip_layers:
            groups = _analyze(model).prunable()
            kept = set(self.skip_layers)
            if isinstance(ratio, dict):
                ratio = {name: value for name, value in ratio.items() if name not in kept}
            else:
                ratio = {leader: ratio for leader, members in groups.items()
                         if not kept & set(members)}
        return prune_by_ratio(model, ratio, criterion=self.criterion,
                              data=data if self.criterion == "taylor" else None,
                              min_channels=self.min_channels)
