"""Rewrite a model for quantization-aware training without changing its function.

TF-MOT's 8-bit scheme quantizes a ``Dense`` kernel per tensor *before* the
``BatchNormalization`` that follows it, while the TFLite converter folds the
batch norm into the kernel first and quantizes the result: the exported int8
model then disagrees with the QAT model (tensorflow/model-optimization#377;
measured: 29 % top-1 agreement on a digits ConvNet with ``head_batch_norm``).
`fold_for_qat` removes the cause: it returns a functional copy of the model in
which every batch norm directly after a linear ``Conv2D`` / ``DepthwiseConv2D``
/ ``Dense`` is folded into that layer's kernel and bias, so that QAT trains and
fake-quantizes exactly the weights the converter will store; and fused
activations that TF-MOT cannot quantize inside a layer (``elu``, ``relu6``,
...) are moved to an ``Activation`` layer of their own.

Folding scales each output channel of a kernel by ``gamma / sqrt(var + eps)``:
pruned zeros stay zeros and each channel keeps its number of distinct values,
but values shared by clusters across channels become distinct per channel.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt._graph import check_graph_model

#: Layers a following batch norm is folded into (exact types: subclasses may
#: compute something else).
FOLD_TARGETS: tuple[type, ...] = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                  keras.layers.Dense)

#: Fused activations left inside their layer: TF-MOT quantizes them there and
#: the TFLite converter fuses them into the int8 kernel.
KEEP_FUSED = ("linear", "relu", "softmax")


@dataclass
class FoldResult:
    """What `fold_for_qat` did.

    Attributes:
        model: The rewritten functional model (not compiled).
        folded: ``{batch norm name: layer it was folded into}``.
        fused: ``{relu Activation name: layer it was fused into}``.
        split: ``{layer name: name of the Activation layer now holding its
            fused activation}``.
    """

    model: keras.Model
    folded: dict[str, str] = field(default_factory=dict)
    fused: dict[str, str] = field(default_factory=dict)
    split: dict[str, str] = field(default_factory=dict)


def _functional(model: keras.Model) -> keras.Model:
    """The model as a functional graph (a Sequential's own layers, re-wired)."""
    if isinstance(model, keras.Sequential):
        if not model.built or not getattr(model, "inputs", None):
            raise ValueError(
                f"Received: model={model.name!r}, a Sequential model without a known input "
                "shape; expected a built model (start it with keras.Input(shape)).")
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def custom_objects(model: keras.Model) -> dict[str, Any]:
    """The classes and activation functions a config of ``model`` needs to be rebuilt.

    Layer classes and activations that are not Keras built-ins (a user's
    layer, a plain Python activation function) are found by these names when
    the model is cloned or rebuilt from its config.

    Args:
        model: A tf_keras model.

    Returns:
        ``{name: class or function}``.
    """
    found: dict[str, Any] = {}
    for layer in model.layers:
        found[type(layer).__name__] = type(layer)
        activation = getattr(layer, "activation", None)
        if callable(activation) and not isinstance(
                keras.activations.serialize(activation), str):
            found[getattr(activation, "__name__", type(activation).__name__)] = activation
    return found


def _activation_name(value: Any) -> str | None:
    """The name of a serialized activation, None for a custom (dict) one."""
    return value if isinstance(value, str) else None


def _single_inbound(entry: dict[str, Any]) -> tuple[str, int, int] | None:
    """``(layer, node, tensor)`` of a layer entry called once on one tensor, else None."""
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) != 1 or not isinstance(nodes[0], list) or len(nodes[0]) != 1:
        return None
    ref = nodes[0][0]
    if not isinstance(ref, list) or len(ref) < 3 or (len(ref) > 3 and ref[3]):
        return None
    return ref[0], int(ref[1]), int(ref[2])


def _consumers(entries: list[dict[str, Any]], outputs: list[list[Any]]) -> dict[str, int]:
    """How often each layer's output is read (by layers or as a model output)."""
    counts: dict[str, int] = {}

    def visit(value: Any) -> None:
        if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and \
                isinstance(value[1], int):
            counts[value[0]] = counts.get(value[0], 0) + 1
            return
        if isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)

    for entry in entries:
        visit(entry.get("inbound_nodes") or [])
    visit(outputs)
    return counts


def _rename_refs(value: Any, old: str, new: str) -> Any:
    """``value`` (inbound nodes or outputs) with references to layer ``old`` pointing to ``new``."""
    if isinstance(value, list):
        if len(value) >= 3 and value[0] == old and isinstance(value[1], int):
            return [new, *value[1:]]
        return [_rename_refs(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: _rename_refs(item, old, new) for key, item in value.items()}
    return value


def _rename_everywhere(config: dict[str, Any], old: str, new: str) -> None:
    """Make every layer's inputs and the model's outputs read layer ``new`` instead of ``old``."""
    for other in config["layers"]:
        other["inbound_nodes"] = _rename_refs(other["inbound_nodes"], old, new)
    config["output_layers"] = _rename_refs(config["output_layers"], old, new)


def _merge_into(config: dict[str, Any], consumers: dict[str, int], entry: dict[str, Any],
                name: str) -> None:
    """Drop layer ``entry``, whose single input is layer ``name``, from the graph ``config``.

    Its readers read ``name`` instead, and ``name`` takes over its count of consumers.
    """
    config["layers"].remove(entry)
    _rename_everywhere(config, entry["name"], name)
    consumers[name] = consumers.get(entry["name"], 0)


def _foldable(bn: keras.layers.Layer, target: keras.layers.Layer) -> bool:
    """Whether ``bn`` normalizes the output channels of ``target``'s linear output."""
    if type(target) not in FOLD_TARGETS or not isinstance(
            bn, keras.layers.BatchNormalization):
        return False
    if getattr(target, "data_format", "channels_last") != "channels_last":
        return False
    if _activation_name(keras.activations.serialize(target.activation)) != "linear":
        return False
    rank = len(target.output_shape)
    axis = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    return [a % rank for a in axis] == [rank - 1]


def fold_weights(target: keras.layers.Layer, bn: keras.layers.Layer
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and bias of ``target`` with ``bn`` folded in.

    ``w' = w * gamma / sqrt(var + eps)`` per output channel and
    ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``, computed in float64.

    Args:
        target: A ``Conv2D``, ``DepthwiseConv2D`` or ``Dense`` layer.
        bn: The ``BatchNormalization`` layer reading its output.

    Returns:
        ``(kernel, bias)`` as float32 arrays.
    """
    mean = bn.moving_mean.numpy().astype("float64")
    var = bn.moving_variance.numpy().astype("float64")
    gamma = bn.gamma.numpy().astype("float64") if bn.gamma is not None else np.ones_like(mean)
    beta = bn.beta.numpy().astype("float64") if bn.beta is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.epsilon)
    if isinstance(target, keras.layers.DepthwiseConv2D):
        kernel = target.depthwise_kernel.numpy().astype("float64")
        # Output channel c * multiplier + m comes from kernel[..., c, m].
        folded = kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
    else:
        kernel = target.kernel.numpy().astype("float64")
        folded = kernel * scale
    bias = target.bias.numpy().astype("float64") if target.use_bias else np.zeros_like(mean)
    return folded.astype("float32"), ((bias - mean) * scale + beta).astype("float32")


def fold_for_qat(model: keras.Model, *, skip_layers: tuple[str, ...] | list[str] = (),
                 fold: bool = True, fuse_relu: bool = True, split: bool = True
                 ) -> FoldResult:
    """Return a functional copy of ``model`` prepared for TF-MOT's 8-bit QAT.

    * A ``BatchNormalization`` whose only input is a linear ``Conv2D``,
      ``DepthwiseConv2D`` or ``Dense`` layer (channels last, normalizing the
      output channels), read by nothing else, is folded into that layer
      (`fold_weights`; a bias is created if the layer had none) and removed.
    * An ``Activation("relu")`` whose only input is such a (now) linear
      layer, read by nothing else, becomes that layer's fused activation.
      TF-MOT's transform for the unfused pattern gives the Conv / Dense a
      no-op quantize config: its weights would train unquantized, and PQAT /
      CQAT would not preserve their zeros or clusters.
    * A fused activation outside `KEEP_FUSED` becomes an ``Activation`` layer
      named ``<layer>_activation`` right after its layer.

    Layers named in ``skip_layers`` are neither folded into nor split. Every
    other layer keeps its name, config and weights; the copy computes the same
    function as ``model`` in inference (to float32 rounding).

    Args:
        model: A built Sequential or functional tf_keras model (not modified).
        skip_layers: Layers to leave exactly as they are.
        fold: Fold batch norms.
        fuse_relu: Fuse ``Activation("relu")`` layers.
        split: Split fused activations.

    Returns:
        A `FoldResult`.

    Raises:
        ValueError: For a subclassed or unbuilt model.
    """
    check_graph_model("model", model, "its layer graph is rewritten for QAT")
    graph = _functional(model)
    config = copy.deepcopy(graph.get_config())
    entries: list[dict[str, Any]] = config["layers"]
    by_name = {entry["name"]: entry for entry in entries}
    layers = {layer.name: layer for layer in graph.layers}
    skip = set(skip_layers)
    consumers = _consumers(entries, config["output_layers"])
    result = FoldResult(model=graph)

    if fold:
        for entry in list(entries):
            bn = layers[entry["name"]]
            source = _single_inbound(entry)
            if source is None or not isinstance(bn, keras.layers.BatchNormalization):
                continue
            name, node, tensor = source
            target = layers.get(name)
            if target is None or node != 0 or tensor != 0 or name in skip or bn.name in skip:
                continue
            if consumers.get(name, 0) != 1 or len(by_name[name].get("inbound_nodes") or []) != 1:
                continue
            if not _foldable(bn, target):
                continue
            by_name[name]["config"]["use_bias"] = True
            _merge_into(config, consumers, entry, name)
            result.folded[bn.name] = name

    if fuse_relu:
        for entry in list(entries):
            layer = layers.get(entry["name"])
            source = _single_inbound(entry)
            if not isinstance(layer, keras.layers.Activation) or source is None or \
                    entry["config"].get("activation") != "relu":
                continue
            name, node, tensor = source
            target = by_name.get(name)
            if target is None or type(layers.get(name)) not in FOLD_TARGETS or node or tensor \
                    or name in skip or layer.name in skip or consumers.get(name, 0) != 1 \
                    or len(target.get("inbound_nodes") or []) != 1 \
                    or target["config"].get("activation") != "linear":
                continue
            target["config"]["activation"] = "relu"
            _merge_into(config, consumers, entry, name)
            result.fused[layer.name] = name

    if split:
        for index in range(len(entries) - 1, -1, -1):
            entry = entries[index]
            layer = layers[entry["name"]]
            activation = entry["config"].get("activation")
            if not isinstance(layer, FOLD_TARGETS) or activation is None or \
                    _activation_name(activation) in KEEP_FUSED or layer.name in skip or \
                    len(entry.get("inbound_nodes") or []) != 1:
                continue
            act_name = f"{layer.name}_activation"
            if act_name in by_name:
                continue
            _rename_everywhere(config, layer.name, act_name)
            entry["config"]["activation"] = "linear"
            act_entry = {
                "class_name": "Activation",
                "config": {"name": act_name, "trainable": entry["config"].get("trainable", True),
                           "dtype": entry["config"].get("dtype", "float32"),
                           "activation": activation},
                "name": act_name,
                "inbound_nodes": [[[layer.name, 0, 0, {}]]],
            }
            entries.insert(index + 1, act_entry)
            by_name[act_name] = act_entry
            result.split[layer.name] = act_name

    custom = custom_objects(graph)
    if not result.folded and not result.split and not result.fused:
        with keras.utils.custom_object_scope(custom):
            rebuilt = keras.models.clone_model(graph)
        rebuilt.set_weights(graph.get_weights())
        result.model = rebuilt
        return result

    rebuilt = keras.Model.from_config(config, custom_objects=custom)
    into = {target: bn for bn, target in result.folded.items()}
    for layer in rebuilt.layers:
        if layer.name in into:
            kernel, bias = fold_weights(layers[layer.name], layers[into[layer.name]])
            old = layers[layer.name]
            values = {"kernel": kernel, "depthwise_kernel": kernel, "bias": bias}
            for weight, source in zip(layer.weights, _weight_slots(layer), strict=True):
                weight.assign(values[source] if source in values else
                              _named_weight(old, source))
        elif layer.name in layers:
            layer.set_weights(layers[layer.name].get_weights())
    result.model = rebuilt
    return result


def _weight_slots(layer: keras.layers.Layer) -> list[str]:
    """The short names (``kernel``, ``bias``, ...) of ``layer``'s weights, in order."""
    return [weight.name.split("/")[-1].split(":")[0] for weight in layer.weights]


def _named_weight(layer: keras.layers.Layer, short: str) -> np.ndarray:
    for weight, name in zip(layer.weights, _weight_slots(layer), strict=True):
        if name == short:
            return weight.numpy()
    raise ValueError(
        f"Received: layer {layer.name!r} without a weight named {short!r}; expected one "
        f"of {_weight_slots(layer)}.")
