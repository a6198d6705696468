"""Bring Keras 3 models into the tf_keras world: convert configurations, copy weights.

A Keras 3 model cannot be rebuilt by tf_keras from its own configuration
(``InputLayer`` has ``batch_shape``, dtype policies are objects, initializers
carry new keys, functional ``inbound_nodes`` have another form), so this
module translates the configuration of Sequential and functional models of
standard layers (`SUPPORTED_LAYERS`) key by key and copies every weight,
checking its shape (and, from a live Keras 3 model, its name).

A ``.keras`` file is read with `zipfile`, `json` and `h5py` only
(`load_keras3_file`): nothing in it is deserialized by Keras 3, so converting
a file never runs Python code from it. Everything that cannot be converted
exactly (a ``Lambda`` layer, a custom class, an unsupported layer, a Keras
3-only option that changes what a layer computes) is named in one
`Keras3ConversionError` before any model is built.

Keras 3 itself is imported only by the functions that take a live Keras 3
model (`convert_keras3_model`, `copy_weights_to_keras3`).
"""

from __future__ import annotations

import inspect
import io
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt.load._inspect import ModelFileError, _json

#: Keras 3 layer classes converted to the tf_keras class of the same name.
SUPPORTED_LAYERS = frozenset({
    "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv1DTranspose", "Conv2DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "BatchNormalization", "LayerNormalization", "Dropout",
    "SpatialDropout1D", "SpatialDropout2D", "Flatten", "Reshape", "Permute",
    "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
    "UpSampling2D", "Add", "Subtract", "Concatenate", "Multiply", "Average", "Maximum",
    "Minimum", "Activation", "ReLU", "LeakyReLU", "Softmax", "ELU", "PReLU", "Rescaling",
    "Normalization", "Embedding",
})
#: Model classes: their layers are converted in turn.
_MODEL_CLASSES = frozenset({"Sequential", "Functional"})
#: Activation names whose tf_keras function computes exactly what Keras 3's does
#: (checked on a grid; ``hard_sigmoid`` differs: Keras 3 uses slope 1/6, tf_keras 0.2).
EXACT_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "sigmoid", "softmax", "log_softmax", "tanh", "elu", "selu",
    "softplus", "softsign", "exponential", "swish", "silu", "gelu", "mish", "leaky_relu",
})
#: Keras 3 keys tf_keras does not know, dropped only with the value(s) that make it exact.
_DROP_IF = {
    "quantization_config": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "rms_scaling": (False,),
    "optional": (False,),
    "data_format": ("channels_last",),
    "noise_shape": (None,),
    "input_axes": (None,),
    "output_axes": (None,),
}
#: Keras 3 keys renamed in tf_keras, per class (``None``: any class).
_RENAMES = {("LeakyReLU", "negative_slope"): "alpha", ("InputLayer", "batch_shape"):
            "batch_input_shape"}
#: Options a tf_keras layer takes in ``**kwargs`` (`tf_keras.layers.Layer.__init__`).
_LAYER_KWARGS = frozenset({"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape",
                           "batch_input_shape", "batch_size", "weights",
                           "activity_regularizer", "autocast", "implementation"})
_PLAIN_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32",
                           "int64", "uint8", "uint16", "uint32", "uint64", "bool", "string"})
_NESTED_MODULES = {"initializer": "initializers", "regularizer": "regularizers",
                   "constraint": "constraints"}
_EXPECTED = ("expected a Sequential or functional Keras 3 model of standard Keras layers "
             "only (supported: {supported})")


class Keras3ConversionError(ModelFileError):
    """A Keras 3 model (or file) that cannot be converted to tf_keras exactly.

    Attributes:
        problems: One description per layer or option that cannot be converted.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


def _expected() -> str:
    return _EXPECTED.format(supported=", ".join(sorted(SUPPORTED_LAYERS)))


def _shown(value: Any) -> str:
    return repr(str(value)) if isinstance(value, (str, os.PathLike)) else \
        f"<{type(value).__name__}>"


# --------------------------------------------------------------------------- detection


def _keras3_module():
    module = sys.modules.get("keras")
    version = getattr(module, "version", None)
    if module is None or not callable(version) or not str(version()).startswith("3."):
        return None
    return module


def is_keras3_model(obj: Any) -> bool:
    """Whether ``obj`` is a Keras 3 ``keras.Model`` (never imports Keras 3 to tell).

    Args:
        obj: Anything.

    Returns:
        True for an instance of Keras 3's ``keras.Model`` (any subclass);
        False for tf_keras models and everything else.
    """
    modules = [getattr(cls, "__module__", "") or "" for cls in type(obj).__mro__]
    if not any(m == "keras" or m.startswith("keras.") for m in modules):
        return False
    keras3 = _keras3_module()
    return keras3 is not None and isinstance(obj, keras3.Model)


def is_keras3_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``.keras`` zip archive written by Keras 3.

    Args:
        path: Any path.

    Returns:
        True when the archive's ``metadata.json`` records a ``keras_version``
        starting with ``"3."``; False otherwise (also for unreadable files).
    """
    try:
        with zipfile.ZipFile(os.fspath(path)) as archive:
            metadata = json.loads(archive.read("metadata.json"))
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
        return False
    return isinstance(metadata, dict) and str(metadata.get("keras_version", "")).startswith("3.")


# --------------------------------------------------------------------------- configs


@cache
def _accepted_keys(cls: type) -> frozenset[str]:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up the MRO."""
    keys: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        keys |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    keys.discard("self")
    if issubclass(cls, keras.layers.Layer):
        keys |= _LAYER_KWARGS
    return frozenset(keys)


def _describe_class(obj: dict[str, Any]) -> str | None:
    """A description of a custom (non-Keras) class, or None for a Keras one."""
    module = obj.get("module")
    registered = obj.get("registered_name")
    cls = obj.get("class_name")
    if isinstance(registered, str) and registered not in (cls, "Functional") and (
            ">" in registered):
        return f"custom class {registered!r} from module {module!r}"
    if isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
        return f"custom class {cls!r} from module {module!r}"
    return None


class _Converter:
    """Collects every problem while it converts a whole configuration."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    # ---- values inside a layer config

    def dtype(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict) and value.get("class_name") in ("DTypePolicy",
                                                                  "FloatDTypePolicy"):
            name = (value.get("config") or {}).get("name")
            if name in ("mixed_float16", "mixed_bfloat16"):
                return {"class_name": "Policy", "config": {"name": name}}
            if isinstance(name, str) and name in _PLAIN_DTYPES:
                return name
            self.problem(f"{where} (dtype policy {name!r} has no tf_keras equivalent)")
            return None
        name = value.get("class_name") if isinstance(value, dict) else type(value).__name__
        self.problem(f"{where} (dtype policy {name!r} has no tf_keras equivalent)")
        return None

    def activation(self, value: Any, where: str) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "function":
            value = value.get("config")
        if value is None or value in EXACT_ACTIVATIONS:
            return value
        self.problem(f"{where} (activation {value!r} is not one tf_keras computes the same)")
        return None

    def nested(self, value: Any, kind: str, where: str) -> Any:
        """An initializer, regularizer or constraint: ``{"class_name", "config"}``."""
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
            self.problem(f"{where} (a {kind} that is not a serialized Keras object)")
            return None
        custom = _describe_class(value)
        cls_name = value["class_name"]
        module = getattr(keras, _NESTED_MODULES[kind])
        cls = getattr(module, cls_name, None)
        if custom or not isinstance(cls, type):
            self.problem(f"{where} ({custom or f'{kind} {cls_name!r}'} not in tf_keras)")
            return None
        config = value.get("config") or {}
        accepted = _accepted_keys(cls)
        out = {}
        for key, item in config.items():
            if key in accepted:
                out[key] = item if not isinstance(item, dict) else None
                if isinstance(item, dict):  # e.g. a seed generator: no exact equivalent
                    self.problem(f"{where} ({kind} {cls_name} option {key}={item!r})")
            elif item not in _DROP_IF.get(key, ()):
                self.problem(f"{where} ({kind} {cls_name} option {key}={item!r} has no "
                             "tf_keras equivalent)")
        return {"class_name": cls_name, "config": out}

    # ---- layers

    def layer(self, obj: Any, *, functional: bool) -> dict[str, Any] | None:
        if not isinstance(obj, dict):
            self.problem(f"a layer entry {obj!r} that is not a serialized layer")
            return None
        cls_name = obj.get("class_name")
        config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
        name = config.get("name", obj.get("name"))
        where = f"layer {name!r}"
        custom = _describe_class(obj)
        if custom and cls_name not in _MODEL_CLASSES:
            self.problem(f"{where} ({custom})")
            return None
        if cls_name in _MODEL_CLASSES:
            if custom:
                self.problem(f"{where} ({custom})")
                return None
            out = self.model(obj)
        elif cls_name == "Lambda":
            self.problem(f"{where} (Lambda)")
            return None
        elif cls_name not in SUPPORTED_LAYERS:
            self.problem(f"{where} ({cls_name}, not supported)")
            return None
        else:
            out = {"class_name": cls_name, "config": self.layer_config(cls_name, config, where)}
        if functional and out is not None:
            out["name"] = obj.get("name", name)
            out["inbound_nodes"] = [self.node(node, where) for node in
                                    obj.get("inbound_nodes") or []]
        return out

    def layer_config(self, cls_name: str, config: dict[str, Any], where: str) -> dict[str, Any]:
        cls = getattr(keras.layers, cls_name)
        accepted = _accepted_keys(cls)
        out: dict[str, Any] = {}
        for key, value in config.items():
            key = _RENAMES.get((cls_name, key), key)
            suffix = key.rsplit("_", 1)[-1]
            if key == "dtype":
                value = self.dtype(value, where)
            elif key == "activation":
                value = self.activation(value, where)
            elif suffix in _NESTED_MODULES:
                value = self.nested(value, suffix, where)
            elif isinstance(value, dict):
                self.problem(f"{where} ({cls_name} option {key}={value!r} is an object)")
                continue
            if key not in accepted:
                if value not in _DROP_IF.get(key, ()):
                    self.problem(f"{where} ({cls_name} option {key}={value!r} has no tf_keras "
                                 "equivalent)")
                continue
            out[key] = value
        if cls_name == "BatchNormalization" and out.get("renorm"):
            self.problem(f"{where} (BatchNormalization with renorm=True)")
        return out

    def model(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        cls_name = obj.get("class_name")
        config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
        name = config.get("name")
        functional = cls_name == "Functional"
        layers = [self.layer(layer, functional=functional) for layer in config.get("layers") or []]
        out: dict[str, Any] = {"name": name, "layers": layers}
        if "trainable" in config:
            out["trainable"] = config["trainable"]
        if functional:
            # tf_keras counts a nested model's own first node (Input to outputs) in the
            # node indices that refer to it; Keras 3 does not.
            offsets = {layer["name"]: 1 for layer in layers
                       if layer is not None and _skips_first_node(layer)}
            for layer in layers:
                if layer is not None:
                    layer["inbound_nodes"] = _shift(layer["inbound_nodes"], offsets)
            out["input_layers"] = _shift(config.get("input_layers"), offsets)
            out["output_layers"] = _shift(config.get("output_layers"), offsets)
        elif config.get("build_input_shape") is not None:
            out["build_input_shape"] = config["build_input_shape"]
        return {"class_name": cls_name, "config": out}

    def tensor(self, value: Any, kwargs: dict[str, Any], where: str) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
            if not (isinstance(history, list) and len(history) == 3):
                self.problem(f"{where} (an input without Keras history)")
                return None
            return [history[0], history[1], history[2], kwargs]
        if isinstance(value, (list, tuple)):
            return [self.tensor(item, kwargs, where) for item in value]
        if isinstance(value, dict) and "class_name" not in value:
            return {k: self.tensor(item, kwargs, where) for k, item in value.items()}
        self.problem(f"{where} (called on a constant {value!r}, not a tensor)")
        return None

    def node(self, node: Any, where: str) -> Any:
        if not isinstance(node, dict) or len(node.get("args") or []) != 1:
            self.problem(f"{where} (called with other than one positional input)")
            return []
        kwargs = {}
        for key, value in (node.get("kwargs") or {}).items():
            if key == "mask" and value is None:
                continue
            if key == "training" and value in (None, False, True):
                kwargs[key] = value
                continue
            self.problem(f"{where} (called with {key}={value!r})")
        data = self.tensor(node["args"][0], kwargs, where)
        single = isinstance(data, list) and len(data) == 4 and isinstance(data[0], str)
        return [data] if single else data


def _skips_first_node(layer: dict[str, Any]) -> bool:
    """Whether tf_keras skips the first node of this converted layer (a model with inputs)."""
    if layer["class_name"] == "Functional":
        return True
    inner = layer["config"].get("layers") or [] if layer["class_name"] == "Sequential" else []
    return bool(inner) and inner[0] is not None and inner[0]["class_name"] == "InputLayer"


def _shift(data: Any, offsets: dict[str, int]) -> Any:
    """Node data with the node indices of the layers in ``offsets`` shifted."""
    if isinstance(data, list) and len(data) in (3, 4) and isinstance(data[0], str) and \
            isinstance(data[1], int):
        return [data[0], data[1] + offsets.get(data[0], 0), *data[2:]]
    if isinstance(data, (list, tuple)):
        return [_shift(item, offsets) for item in data]
    if isinstance(data, dict):
        return {key: _shift(item, offsets) for key, item in data.items()}
    return data


def convert_keras3_config(config: dict[str, Any], *, arg: str = "model",
                          shown: str | None = None) -> dict[str, Any]:
    """Translate a serialized Keras 3 model into a tf_keras model configuration.

    Args:
        config: A Keras 3 model as serialized in a ``.keras`` file's
            ``config.json`` (``{"module", "class_name", "config", ...}``), for
            a Sequential or functional model.
        arg: The argument's name in error messages.
        shown: How the model is shown in error messages (default: a
            placeholder with the config's class name).

    Returns:
        ``{"class_name", "config"}`` that ``tf_keras.Sequential.from_config``
        / ``tf_keras.Model.from_config`` (or
        ``tf_keras.models.model_from_config``) builds.

    Raises:
        Keras3ConversionError: Naming, in one message, every layer or option
            that cannot be converted exactly (``Lambda`` layers, custom
            classes, unsupported layers, Keras 3-only options that change
            what a layer computes).
    """
    shown = shown or "<Keras 3 model config>"
    if not isinstance(config, dict) or config.get("class_name") not in _MODEL_CLASSES:
        cls = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise Keras3ConversionError(
            f"Received: {arg}={shown}, a Keras 3 {cls!r} (a subclassed model or not a model); "
            f"{_expected()}.", [f"model class {cls!r}"])
    converter = _Converter()
    custom = _describe_class(config)
    if custom:
        converter.problem(f"the model itself ({custom})")
    converted = converter.model(config)
    if converter.problems:
        raise Keras3ConversionError(
            f"Received: {arg}={shown} holding {', '.join(converter.problems)}; {_expected()}.",
            converter.problems)
    return converted


def _build(converted: dict[str, Any], arg: str, shown: str) -> keras.Model:
    try:
        return keras.models.model_from_config(converted)
    except Exception as exc:  # tf_keras raises many types; name the model and the cause
        cause = " ".join(str(exc).split())[:300]
        raise Keras3ConversionError(
            f"Received: {arg}={shown}; expected a Keras 3 model tf_keras can rebuild, but "
            f"building it failed: {type(exc).__name__}: {cause}") from None


# --------------------------------------------------------------------------- weights


def _snake(name: str) -> str:
    """Keras 3's ``naming.to_snake_case`` (the group names in ``model.weights.h5``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


#: One Keras 3 layer's state: (path of layer names, class, [(variable name or None, array)]).
_State = tuple[tuple[str, ...], str, list[tuple[str | None, np.ndarray]]]


def _file_states(group: Any, config: dict[str, Any], prefix: tuple[str, ...],
                 used: set[str]) -> Iterator[_State]:
    """Every layer's stored variables, walking the h5 groups the way Keras 3 wrote them."""
    cls_name = config["class_name"]
    layers = config["config"].get("layers") or []
    if cls_name == "Sequential":  # Keras 3's Sequential.layers leaves out its InputLayer
        layers = [layer for layer in layers if layer.get("class_name") != "InputLayer"]
    counts: dict[str, int] = {}
    for layer in layers:
        base = _snake(layer["class_name"])
        key = base if base not in counts else f"{base}_{counts[base] + 1}"
        counts[base] = counts.get(base, -1) + 1
        name = layer["config"].get("name", layer.get("name"))
        path = f"layers/{key}"
        sub = group.get(path) if group is not None else None
        variables: list[tuple[str | None, np.ndarray]] = []
        holder = sub.get("vars") if sub is not None else None
        if holder is not None:
            stored = holder.attrs.get("name")
            if isinstance(stored, bytes):
                stored = stored.decode()
            if stored is not None and stored != name:
                raise KeyError(f"{holder.name} holds layer {stored!r}, not {name!r}")
            for index in range(len(holder)):
                dataset = holder[str(index)]
                variables.append((None, np.asarray(dataset)))
                used.add(dataset.name)
        yield (*prefix, name), layer["class_name"], variables
        if layer["class_name"] in _MODEL_CLASSES:
            yield from _file_states(sub, layer, (*prefix, name), used)


def _live_states(model: Any, prefix: tuple[str, ...] = ()) -> Iterator[_State]:
    """Every layer's variables of a live Keras 3 model, in the order Keras 3 saves them."""
    for layer in model.layers:
        store: dict[str, Any] = {}
        layer.save_own_variables(store)
        names = {id(v): v.name for v in layer.weights}
        variables = [(names.get(id(store[str(i)]), getattr(store[str(i)], "name", None)),
                      np.asarray(store[str(i)])) for i in range(len(store))]
        cls_name = type(layer).__name__
        yield (*prefix, layer.name), cls_name, variables
        if cls_name in _MODEL_CLASSES:
            yield from _live_states(layer, (*prefix, layer.name))


def _tf_layer(model: Any, path: tuple[str, ...]) -> Any:
    layer = model
    for name in path:
        try:
            layer = layer.get_layer(name)
        except (ValueError, AttributeError):
            return None
    return layer


#: Keras 3 variable names that tf_keras spells otherwise (Keras 3 name, tf_keras name).
_NAME_ALIASES = frozenset({("kernel", "depthwise_kernel")})


def _same_name(keras3_name: str | None, tf_name: str) -> bool:
    return keras3_name is None or keras3_name == tf_name or (
        (keras3_name, tf_name) in _NAME_ALIASES)


def _weight_name(weight: Any) -> str:
    return weight.name.split("/")[-1].split(":")[0]


def _own_weights(layer: Any) -> list[Any]:
    return [] if isinstance(layer, keras.Model) else list(layer.weights)


def _finalize(layer: Any) -> None:
    finalize = getattr(layer, "finalize_state", None)
    if callable(finalize) and getattr(layer, "built", False):
        finalize()


def _copy_into_tf(tf_model: Any, states: Iterator[_State], arg: str, shown: str) -> None:
    problems = []
    assignments = []
    for path, cls_name, variables in states:
        layer = _tf_layer(tf_model, path)
        where = f"layer {'/'.join(path)!r} ({cls_name})"
        if layer is None:
            problems.append(f"{where} is missing from the tf_keras model")
            continue
        weights = _own_weights(layer)
        if len(weights) != len(variables):
            problems.append(f"{where} stores {len(variables)} variables; expected "
                            f"{len(weights)} ({', '.join(_weight_name(w) for w in weights)})")
            continue
        for index, (weight, (name, value)) in enumerate(zip(weights, variables, strict=True)):
            expected = tuple(weight.shape)
            if tuple(value.shape) != expected or not _same_name(name, _weight_name(weight)):
                shown_name = f"{name!r} " if name else ""
                problems.append(f"{where} variable {index} {shown_name}of shape "
                                f"{tuple(value.shape)}; expected {_weight_name(weight)!r} "
                                f"of shape {expected}")
                break
            assignments.append((weight, value))
    if problems:
        raise Keras3ConversionError(
            f"Received: {arg}={shown} whose weights do not fit the converted model: "
            f"{'; '.join(problems[:5])}.", problems)
    for weight, value in assignments:
        weight.assign(value.astype(weight.dtype.as_numpy_dtype, copy=False))
    for layer in _walk_tf(tf_model):
        _finalize(layer)


def _walk_tf(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk_tf(layer)


# --------------------------------------------------------------------------- entry points


def load_keras3_file(path: str | os.PathLike, *, arg: str = "model") -> keras.Model:
    """Build the tf_keras equivalent of a Keras 3 ``.keras`` file, weights included.

    The archive is read with `zipfile`, `json` and `h5py` only: nothing from
    it is deserialized by Keras 3 (which need not even be installed), so no
    code from the file runs. The configuration is converted
    (`convert_keras3_config`) before anything is built.

    Args:
        path: A ``.keras`` file written by Keras 3.
        arg: The argument's name in error messages.

    Returns:
        The tf_keras model (not compiled).

    Raises:
        Keras3ConversionError: If the model holds anything that cannot be
            converted exactly (all named in one message), or a stored
            variable does not fit the converted model (the layer, expected and
            received shapes named), or a stored variable is left unused.
        ModelFileError: If the file is not a readable ``.keras`` archive.
    """
    import h5py

    path = Path(os.fspath(path))
    shown = repr(str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = {"config.json", "model.weights.h5"} - names
            if missing:
                raise ModelFileError(f"Received: {arg}={shown}, a zip archive without "
                                     f"{', '.join(sorted(missing))}; expected a Keras 3 .keras "
                                     "file.")
            config = _json(archive.read("config.json"), "config.json", path, arg)
            converted = convert_keras3_config(config, arg=arg, shown=shown)
            model = _build(converted, arg, shown)
            # In memory: h5py seeks back and forth, slow on a compressed zip member.
            raw = io.BytesIO(archive.read("model.weights.h5"))
            with h5py.File(raw, "r") as weights:
                used: set[str] = set()
                try:
                    states = list(_file_states(weights, config, (), used))
                except (KeyError, ValueError, TypeError) as err:
                    raise Keras3ConversionError(
                        f"Received: {arg}={shown} whose model.weights.h5 does not match its "
                        f"config.json ({err}); expected a file saved by Keras 3.") from None
                stored: list[str] = []
                weights.visititems(lambda name, obj: stored.append("/" + name)
                                   if isinstance(obj, h5py.Dataset) else None)
    except (OSError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"Received: {arg}={shown}, which cannot be read as a .keras "
                             f"archive ({err}); expected a Keras 3 .keras file.") from None
    # Only the model's own and its layers' variables: an optimizer's state is not converted.
    unused = [name for name in stored if name not in used and name.startswith(("/layers/",
                                                                                "/vars/"))]
    if unused:
        raise Keras3ConversionError(
            f"Received: {arg}={shown} whose model.weights.h5 holds variables no converted "
            f"layer uses ({', '.join(unused[:5])}); expected only the layers' variables.",
            unused)
    _copy_into_tf(model, iter(states), arg, shown)
    return model


def _check_keras3_model(model: Any, arg: str) -> tuple[Any, str]:
    if not is_keras3_model(model):
        raise Keras3ConversionError(f"Received: {arg} of type {type(model).__name__}; "
                                    "expected a Keras 3 keras.Model.")
    shown = f"<Keras 3 {type(model).__name__} {getattr(model, 'name', '')!r}>"
    if type(model).__name__ not in _MODEL_CLASSES or not type(model).__module__.startswith(
            "keras."):
        raise Keras3ConversionError(
            f"Received: {arg}={shown}, a subclassed Keras 3 model (class "
            f"{type(model).__module__}.{type(model).__name__}); {_expected()}.",
            [f"model class {type(model).__name__!r}"])
    return _keras3_module(), shown


def convert_keras3_model(model: Any, *, arg: str = "model") -> keras.Model:
    """Build the tf_keras equivalent of an in-memory Keras 3 model, weights included.

    Args:
        model: A Keras 3 Sequential or functional model.
        arg: The argument's name in error messages.

    Returns:
        The tf_keras model (not compiled), with every weight copied from
        ``model`` (shapes and variable names checked).

    Raises:
        Keras3ConversionError: For a subclassed model, anything that cannot
            be converted exactly (all named in one message), or weights that
            do not fit.
    """
    keras3, shown = _check_keras3_model(model, arg)
    config = keras3.saving.serialize_keras_object(model)
    converted = convert_keras3_config(config, arg=arg, shown=shown)
    tf_model = _build(converted, arg, shown)
    _copy_into_tf(tf_model, _live_states(model), arg, shown)
    return tf_model


def copy_weights_to_keras3(tf_model: Any, keras3_model: Any, *, arg: str = "model") -> None:
    """Set a Keras 3 model's weights from a tf_keras model of the same structure.

    The way back after `convert_keras3_model` (e.g. after fine-tuning or
    weight pruning, which keep the structure): every layer is matched by its
    path of names, its class and the shapes of its variables.

    Args:
        tf_model: The tf_keras model.
        keras3_model: The Keras 3 model whose variables are set.
        arg: The argument's name in error messages.

    Raises:
        Keras3ConversionError: Naming the first layer that differs (missing,
            another class, other variables or shapes, e.g. after structured
            pruning or quantization-aware training); nothing is changed then.
    """
    _, shown = _check_keras3_model(keras3_model, arg)
    if not isinstance(tf_model, keras.Model):
        raise Keras3ConversionError(f"Received: tf_model of type {type(tf_model).__name__}; "
                                    "expected a tf_keras model.")
    assignments = []
    seen = []

    def differs(where: str, what: str) -> Keras3ConversionError:
        return Keras3ConversionError(
            f"Received: {arg}={shown} whose layer {where} differs from the tf_keras model's: "
            f"{what}; expected the same structure (same layer names, classes and weight "
            "shapes) as the converted model.", [where])

    def walk(k3: Any, tf: Any, prefix: tuple[str, ...]) -> None:
        tf_names = [layer.name for layer in tf.layers
                    if not isinstance(layer, keras.layers.InputLayer)]
        k3_names = [layer.name for layer in k3.layers if type(layer).__name__ != "InputLayer"]
        for name in tf_names:
            if name not in k3_names:
                raise differs(repr("/".join((*prefix, name))), "it is not in the Keras 3 model")
        for layer in k3.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            path = (*prefix, layer.name)
            where = f"{'/'.join(path)!r} ({type(layer).__name__})"
            other = _tf_layer(tf, (layer.name,))
            if other is None:
                raise differs(where, "it is missing from the tf_keras model")
            if type(other).__name__ != type(layer).__name__:
                raise differs(where, f"it is a {type(other).__name__} in the tf_keras model")
            if type(layer).__name__ in _MODEL_CLASSES:
                walk(layer, other, path)
                continue
            store: dict[str, Any] = {}
            layer.save_own_variables(store)
            targets = [store[str(i)] for i in range(len(store))]
            sources = _own_weights(other)
            shapes = [tuple(v.shape) for v in targets]
            received = [tuple(w.shape) for w in sources]
            if shapes != received:
                raise differs(where, f"variable shapes {received} in the tf_keras model, "
                                     f"{shapes} in the Keras 3 model")
            assignments.extend(zip(targets, sources, strict=True))
            seen.append(layer)

    walk(keras3_model, tf_model, ())
    for target, source in assignments:
        target.assign(np.asarray(source.numpy()).astype(target.dtype, copy=False))
    for layer in seen:
        _finalize(layer)


def as_tf_keras(model: Any, *, arg: str = "model") -> tuple[Any, bool]:
    """A tf_keras model for ``model``, converting a Keras 3 one.

    Args:
        model: A tf_keras model, a Keras 3 model, or anything else.
        arg: The argument's name in error messages.

    Returns:
        ``(model, False)`` for a tf_keras model or anything that is not a
        Keras 3 model (callers keep their own type checks);
        ``(convert_keras3_model(model), True)`` for a Keras 3 model.

    Raises:
        Keras3ConversionError: If a Keras 3 model cannot be converted.
    """
    if is_keras3_model(model):
        return convert_keras3_model(model, arg=arg), True
    return model, False
