"""The channel graph of a model for structured pruning: which layers must lose which channels.

`_analyze` walks a Sequential or functional model (channels last) and records,
for each *producer* (a layer whose output channels can be removed: Conv1D /
Conv2D / Conv3D filters, the pointwise filters of SeparableConv1D /
SeparableConv2D, Dense units), its *group* (producers joined by a merge layer
keep the same channels), how its channels reach every later layer (passed
through, sliced, offset by a Concatenate, interleaved by a Flatten), and which
groups are *pinned* (never pruned). See `keras_autoopt.compress._structured`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt._graph import check_graph_model
from keras_autoopt.compress._fold import _functional
from keras_autoopt.compress._steps import UnsupportedLayerError

_L = keras.layers
#: Layers whose output channels can be removed (exact classes: subclasses may differ).
_CONV_PRODUCERS = (_L.Conv1D, _L.Conv2D, _L.Conv3D)
_SEPARABLE = (_L.SeparableConv1D, _L.SeparableConv2D)
_PRODUCERS = (*_CONV_PRODUCERS, *_SEPARABLE, _L.Dense)
_DEPTHWISE = (_L.DepthwiseConv1D, _L.DepthwiseConv2D)
_NORMS = (_L.BatchNormalization, _L.LayerNormalization)
_MERGES = (_L.Add, _L.Subtract, _L.Multiply, _L.Average, _L.Maximum, _L.Minimum)
#: Layers that keep the channels of their (single) input 1:1.
_PASS = (
    _L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D,
    _L.AveragePooling1D, _L.AveragePooling2D, _L.AveragePooling3D,
    _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D,
    _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D, _L.GlobalAveragePooling3D,
    _L.Activation, _L.ReLU, _L.LeakyReLU, _L.ELU, _L.Softmax, _L.ThresholdedReLU,
    _L.Dropout, _L.SpatialDropout1D, _L.SpatialDropout2D, _L.SpatialDropout3D,
    _L.GaussianNoise, _L.GaussianDropout, _L.AlphaDropout, _L.ActivityRegularization,
    _L.ZeroPadding1D, _L.ZeroPadding2D, _L.ZeroPadding3D,
    _L.Cropping1D, _L.Cropping2D, _L.Cropping3D,
    _L.UpSampling1D, _L.UpSampling2D, _L.UpSampling3D, _L.Rescaling,
)
#: Layers whose input is never sliced: channels reaching them are pinned.
_BARRIERS = (_L.Embedding, _L.Permute)
_SUPPORTED = (_L.InputLayer, *_PRODUCERS, *_DEPTHWISE, *_NORMS, *_MERGES, *_PASS, *_BARRIERS,
              _L.Concatenate, _L.Flatten, _L.Reshape)


@dataclass(frozen=True)
class _Layout:
    """What the last axis of a tensor holds: ``repeats`` copies of its segments in order.

    Each segment is ``(group id or None, width)``; None marks channels no pruning touches
    (model inputs, outputs of pinned layers). ``repeats > 1`` after a ``Flatten``.
    """

    segments: tuple[tuple[int | None, int | None], ...]
    repeats: int = 1

    def groups(self) -> set[int]:
        return {gid for gid, _ in self.segments if gid is not None}

    def structure(self) -> tuple[Any, ...]:
        return tuple(width for _, width in self.segments), self.repeats


@dataclass
class _Analysis:
    """The channel dependencies of a model (see `_analyze`)."""

    model: keras.Model
    graph: keras.Model
    layers: dict[str, keras.layers.Layer]
    order: list[str]
    inputs: dict[str, list[str]]
    consumers: dict[str, list[str]]
    layouts: dict[str, _Layout]
    producers: dict[str, int]  # producer name -> its own group id
    parent: list[int] = field(default_factory=list)
    pins: list[tuple[int, str]] = field(default_factory=list)
    reshapes: list[str] = field(default_factory=list)

    def find(self, gid: int) -> int:
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def pin(self, gids: set[int], reason: str) -> None:
        self.pins.extend((gid, reason) for gid in gids)

    def members(self, root: int) -> list[str]:
        """Producers of group ``root``, in layer order (the first is the leader)."""
        return [name for name in self.order
                if name in self.producers and self.find(self.producers[name]) == root]

    def pinned(self) -> dict[int, str]:
        """``{group root: why it cannot be pruned}``."""
        found: dict[int, str] = {}
        for gid, reason in self.pins:
            found.setdefault(self.find(gid), reason)
        return found

    def prunable(self) -> dict[str, list[str]]:
        """``{group leader: members}`` of every group that may be pruned, in layer order."""
        pinned = self.pinned()
        groups: dict[str, list[str]] = {}
        seen: set[int] = set()
        for name in self.order:
            if name not in self.producers:
                continue
            root = self.find(self.producers[name])
            if root in seen or root in pinned:
                continue
            seen.add(root)
            groups[name] = self.members(root)
        return groups

    def expand(self, layout: _Layout, keep: Mapping[int, np.ndarray]) -> np.ndarray | None:
        """Indices of the last axis that survive, None if nothing of it is removed."""
        parts, offset, changed = [], 0, False
        for gid, width in layout.segments:
            root = self.find(gid) if gid is not None else None
            if root is not None and root in keep:
                parts.append(offset + keep[root])
                changed = True
            else:
                parts.append(offset + np.arange(width))
            offset += width
        if not changed:
            return None
        one = np.concatenate(parts)
        return np.concatenate([r * offset + one for r in range(layout.repeats)])


def _shape(layer: keras.layers.Layer) -> tuple[Any, ...]:
    shape = layer.output_shape
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    return tuple(shape)


def _refs(value: Any) -> list[str]:
    """Names of the layers referenced by a config's inbound node (or output list)."""
    if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and \
            isinstance(value[1], int):
        return [value[0]]
    if isinstance(value, list):
        return [name for item in value for name in _refs(item)]
    return []


def _describe(layer: keras.layers.Layer) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__})"


def _check_layer(layer: keras.layers.Layer) -> None:
    """Refuse a layer the surgery does not know, naming it and its class."""
    if isinstance(layer, keras.Model):
        raise UnsupportedLayerError(
            f"Received: {_describe(layer)}, a nested model; expected a model of plain layers "
            "for structured pruning (flatten the nested model into the outer one first).")
    if type(layer) not in _SUPPORTED:
        raise UnsupportedLayerError(
            f"Received: {_describe(layer)}; expected only layers structured pruning supports: "
            "Conv1D/2D/3D, SeparableConv1D/2D, Dense, DepthwiseConv1D/2D, BatchNormalization, "
            "LayerNormalization, merges, Concatenate, Flatten, Reshape, pooling, activations, "
            "dropout, padding, cropping and up-sampling layers.")
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        raise UnsupportedLayerError(
            f"Received: {_describe(layer)} with data_format='channels_first'; expected "
            "channels-last layers for structured pruning.")


def _analyze(model: Any) -> _Analysis:
    """Find the channel groups of ``model`` and where their channels go.

    Raises:
        ValueError: For a subclassed or unbuilt model, or a layer called more than once.
        UnsupportedLayerError: For a layer class structured pruning does not know.
    """
    check_graph_model("model", model, "structured pruning rebuilds its layer graph")
    graph = _functional(model)
    for layer in graph.layers:
        _check_layer(layer)
    config = graph.get_config()
    entries = config["layers"]
    layers = {layer.name: layer for layer in graph.layers}
    inputs: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {name: [] for name in layers}
    for entry in entries:
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise ValueError(
                f"Received: {_describe(layers[entry['name']])} called {len(nodes)} times in "
                f"model {model.name!r}; expected each layer to be called once (shared layers "
                "cannot be pruned structurally).")
        inputs[entry["name"]] = _refs(nodes[0]) if nodes else []
        for source in inputs[entry["name"]]:
            consumers[source].append(entry["name"])
    result = _Analysis(model=model, graph=graph, layers=layers,
                       order=[entry["name"] for entry in entries], inputs=inputs,
                       consumers=consumers, layouts={}, producers={})
    for name in result.order:
        result.layouts[name] = _layout_of(result, layers[name])
    for name in _refs(config["output_layers"]):
        result.pin(result.layouts[name].groups(), f"it reaches the model output {name!r}")
    return result


def _fresh(layer: keras.layers.Layer) -> _Layout:
    return _Layout(((None, _shape(layer)[-1]),))


def _layout_of(a: _Analysis, layer: keras.layers.Layer) -> _Layout:
    """The layout of ``layer``'s output, recording groups, unions and pins on the way."""
    ins = [a.layouts[name] for name in a.inputs[layer.name]]
    shape = _shape(layer)
    kind = type(layer)
    where = _describe(layer)
    if kind is _L.InputLayer:
        return _fresh(layer)
    if kind in _PRODUCERS:
        if getattr(layer, "groups", 1) != 1:
            a.pin(ins[0].groups(), f"it feeds the grouped convolution {where}")
            return _fresh(layer)  # Not registered as a producer: never pruned.
        gid = len(a.parent)
        a.parent.append(gid)
        a.producers[layer.name] = gid
        return _Layout(((gid, shape[-1]),))
    if kind in _DEPTHWISE:
        if layer.depth_multiplier != 1:
            a.pin(ins[0].groups(), f"it feeds {where} with depth_multiplier="
                                   f"{layer.depth_multiplier}")
            return _fresh(layer)
        return ins[0]
    if kind in _NORMS:
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        if [int(x) % len(shape) for x in axis] != [len(shape) - 1]:
            a.pin(ins[0].groups(), f"it is normalized by {where} over another axis than "
                                   "the last")
        return ins[0]
    if kind in _PASS:
        return ins[0]
    if kind in _BARRIERS:
        if ins:
            a.pin(ins[0].groups(), f"it feeds {where}")
        return _fresh(layer)
    if kind is _L.Concatenate and layer.axis % len(shape) == len(shape) - 1:
        if any(width is None for lay in ins for _, width in lay.segments) or \
                any(lay.repeats != 1 for lay in ins):
            a.pin(set().union(*(lay.groups() for lay in ins)),
                  f"it is concatenated by {where} with channels of unknown layout")
            return _fresh(layer)
        return _Layout(tuple(seg for lay in ins for seg in lay.segments))
    if kind in _MERGES or kind is _L.Concatenate:
        return _merge(a, ins, where)
    if kind is _L.Flatten:
        lay = ins[0]
        if not lay.groups():
            return _fresh(layer)
        spatial = a.layers[a.inputs[layer.name][0]]
        dims = _shape(spatial)[1:-1]
        if any(d is None for d in dims):
            a.pin(lay.groups(), f"it is flattened by {where} from a shape of unknown size")
            return _fresh(layer)
        return _Layout(lay.segments, lay.repeats * math.prod(dims))
    if kind is _L.Reshape:
        lay = ins[0]
        source = _shape(a.layers[a.inputs[layer.name][0]])
        if not lay.groups():
            return _fresh(layer)
        if layer.target_shape[-1] == -1 or source[-1] != shape[-1]:
            a.pin(lay.groups(), f"its channel axis is reshaped by {where}")
            return _fresh(layer)
        a.reshapes.append(layer.name)
        return lay
    raise AssertionError(f"unhandled {where}")  # _check_layer refused it.


def _merge(a: _Analysis, ins: list[_Layout], where: str) -> _Layout:
    """Inputs of an element-wise merge keep the same channel indices: one group."""
    if len({lay.structure() for lay in ins}) != 1:
        a.pin(set().union(*(lay.groups() for lay in ins)),
              f"it is merged by {where} with channels of another layout")
        return ins[0]
    for position in range(len(ins[0].segments)):
        gids = [lay.segments[position][0] for lay in ins]
        known = {gid for gid in gids if gid is not None}
        if len(known) < len(gids):
            a.pin(known, f"it is merged by {where} with channels that cannot be pruned")
        for gid in known:
            a.union(min(known), gid)
    return ins[0]


def _index_list(name: str, value: Any, size: int) -> np.ndarray:
    """Checked, sorted channel indices of ``keep[name]``."""
    text = f"Received: keep[{name!r}]={value!r}"
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"{text}; expected a sequence of channel indices.")
    items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
    if not items or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                            for i in items):
        raise ValueError(f"{text}; expected a non-empty sequence of integer channel indices.")
    indices = np.asarray(sorted(int(i) for i in items), dtype=np.int64)
    if indices[0] < 0 or indices[-1] >= size:
        raise ValueError(f"{text}; expected channel indices in [0, {size}) (layer {name!r} "
                         f"has {size} channels).")
    if len(np.unique(indices)) != len(indices):
        raise ValueError(f"{text}; expected each channel index at most once.")
    return indices


def _resolve_keep(a: _Analysis, keep: Any) -> dict[int, np.ndarray]:
    """``keep`` checked and mapped to ``{group root: indices}`` (full groups left out)."""
    if not isinstance(keep, Mapping):
        raise ValueError(f"Received: keep of type {type(keep).__name__}; expected a mapping "
                         "of producer layer names to the channel indices to keep.")
    prunable = a.prunable()
    pinned = a.pinned()
    resolved: dict[int, np.ndarray] = {}
    given: dict[int, str] = {}
    for name, value in keep.items():
        if name not in a.producers:
            raise ValueError(
                f"Received: keep[{name!r}]; expected the name of a prunable layer of model "
                f"{a.model.name!r}, one of {sorted(n for m in prunable.values() for n in m)}.")
        root = a.find(a.producers[name])
        if root in pinned:
            raise ValueError(
                f"Received: keep[{name!r}]; expected a layer that can be pruned, but the "
                f"channels of {name!r} cannot be removed: {pinned[root]}.")
        indices = _index_list(name, value, _shape(a.layers[name])[-1])
        if root in resolved and not np.array_equal(resolved[root], indices):
            raise ValueError(
                f"Received: keep[{name!r}]={indices.tolist()} and keep[{given[root]!r}]="
                f"{resolved[root].tolist()}; expected one selection per group (they are joined "
                "by a merge layer and keep the same channels).")
        resolved[root], given[root] = indices, name
    return {root: idx for root, idx in resolved.items()
            if len(idx) < _shape(a.layers[given[root]])[-1]}
