"""Read a saved model's configuration without deserializing it, and judge it.

A tf_keras model file is code as much as data: an ``.h5`` file holding a
``Lambda`` layer runs that layer's marshalled Python function when
``load_model`` rebuilds the model, and a serialized function reference
(``{"class_name": "function", "module": ..., "config": ...}``) imports a
module and calls what it names. This module reads the configuration of each
format straight from the file (HDF5 attribute ``model_config``; ``config.json``
in a ``.keras`` archive; ``keras_metadata.pb`` of a SavedModel folder) and
lists everything in it that would run code on load: ``Lambda`` layers,
serialized Python functions, and classes that are not known tf_keras, TF-MOT
or keras_autoopt classes. Nothing in the file is deserialized to do so.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from keras_autoopt._backend import keras, tfmot
from keras_autoopt._failure import InputError

#: Suffixes of the model files we read (a SavedModel is a folder).
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_EXPECTED = "expected a tf_keras model file (.keras, .h5) or a SavedModel folder"

#: Markers of serialized containers that are data, not classes.
_DATA_CLASS_NAMES = frozenset({"__tuple__", "__ellipsis__", "__numpy__", "__bytes__",
                               "__typespec__", "__tensor__", "__passive_serialization__",
                               "TensorShape", "TypeSpec"})
#: Module prefixes from which a ``.keras`` config may name its classes.
_KNOWN_MODULE_PREFIXES = ("keras", "tf_keras", "tensorflow_model_optimization",
                          "keras_autoopt")


class ModelFileError(InputError):
    """A model file that cannot be read; the message names the file and why."""


class UnsafeModelError(ModelFileError):
    """A model file whose loading would run code from the file.

    Attributes:
        path: The file.
        findings: One description per offending item (e.g. ``"Lambda layer 'lambda'"``).
    """

    def __init__(self, message: str, path: str, findings: list[str]):
        super().__init__(message)
        self.path = path
        self.findings = findings


@dataclasses.dataclass(frozen=True)
class ModelFileInfo:
    """What a model file holds, read without deserializing it.

    Attributes:
        path: The file or folder.
        format: ``"keras"``, ``"h5"`` or ``"savedmodel"``.
        keras_version: The Keras version that wrote it, if recorded.
        configs: The serialized configurations found (the model's config;
            for a SavedModel, each node's metadata).
        findings: What would run code on load (empty for a safe file).
    """

    path: str
    format: str
    keras_version: str | None
    configs: tuple[Any, ...]
    findings: tuple[str, ...]

    @property
    def safe(self) -> bool:
        """Whether nothing in the file would run code on load."""
        return not self.findings


def _tfmot_scopes() -> list[Any]:
    return [tfmot.quantization.keras.quantize_scope(), tfmot.sparsity.keras.prune_scope(),
            tfmot.clustering.keras.cluster_scope()]


def tfmot_custom_objects() -> dict[str, Any]:
    """The classes TF-MOT registers for loading its wrapped models, by name."""
    objects: dict[str, Any] = {}
    for scope in _tfmot_scopes():
        for mapping in scope.custom_objects:  # CustomObjectScope(*dicts)
            objects.update(mapping)
    return objects


def _class_names(module: Any) -> set[str]:
    return {name for name in dir(module) if isinstance(getattr(module, name, None), type)}


@lru_cache(maxsize=1)
def known_class_names() -> frozenset[str]:
    """Class names a safe configuration may hold.

    tf_keras layers (but ``Lambda``), models, initializers, regularizers,
    constraints, metrics, losses, optimizers and dtype policies; TF-MOT's
    wrappers, quantizers, quantize configs and schedules. keras_autoopt's own
    classes are recognized by their registered name (`is_autoopt_class`).
    """
    names: set[str] = {"Functional", "Sequential", "Model", "Policy", "DTypePolicy"}
    for module in (keras.layers, keras.initializers, keras.regularizers, keras.constraints,
                   keras.metrics, keras.losses, keras.optimizers,
                   keras.optimizers.schedules, keras.mixed_precision):
        names |= _class_names(module)
    names |= set(tfmot_custom_objects())
    for module in (tfmot.sparsity.keras, tfmot.clustering.keras, tfmot.quantization.keras,
                   tfmot.quantization.keras.quantizers,
                   tfmot.quantization.keras.default_8bit):
        names |= _class_names(module)
    names.discard("Lambda")
    names.discard("Layer")  # the base class: a bare Layer config is a custom layer's
    return frozenset(names)


def is_autoopt_class(name: Any) -> bool:
    """Whether ``name`` is registered by keras_autoopt itself (``"keras_autoopt>X"``)."""
    if not isinstance(name, str) or not name.startswith("keras_autoopt>"):
        return False
    obj = keras.utils.get_registered_object(name)
    return isinstance(obj, type) and obj.__module__.startswith("keras_autoopt")


def _activation_names() -> frozenset[str]:
    return frozenset(name for name in dir(keras.activations) if not name.startswith("_"))


def _walk(node: Any, layer: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every serialized object (a dict with ``class_name``) and the layer it sits in."""
    if isinstance(node, dict):
        if "class_name" in node:
            config = node.get("config")
            name = node.get("name")
            if isinstance(config, dict) and isinstance(config.get("name"), str):
                name = config["name"]
            if isinstance(name, str):
                layer = name
            yield node, layer
        for value in node.values():
            yield from _walk(value, layer)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, layer)


def _in(layer: str | None) -> str:
    return f" in layer {layer!r}" if layer else ""


def find_unsafe(config: Any) -> list[str]:
    """List what in a serialized model configuration would run code on load.

    Args:
        config: A JSON-decoded configuration (any nesting of dicts and lists).

    Returns:
        One description per finding, in order, e.g. ``"Lambda layer 'lambda'"``,
        ``"a serialized Python function in layer 'dense'"``, ``"class 'Evil'
        in layer 'evil', which is not a known tf_keras / TF-MOT / keras_autoopt
        class"``; empty when the configuration is safe.
    """
    known = known_class_names()
    activations = _activation_names()
    findings: list[str] = []
    for obj, layer in _walk(config, None):
        cls = obj.get("class_name")
        if isinstance(cls, str) and cls.startswith("Custom>"):  # tf_keras' default package
            cls = cls[len("Custom>"):]
        module = obj.get("module")
        registered = obj.get("registered_name")
        if cls == "Lambda":
            findings.append(f"Lambda layer {layer!r}")
        elif cls in ("__lambda__", "function") or "function_type" in obj:
            allowed = (cls == "function" and isinstance(module, str)
                       and module.startswith(("keras", "tf_keras"))
                       and obj.get("config") in activations)
            if not allowed:
                findings.append(f"a serialized Python function{_in(layer)}")
        elif not isinstance(cls, str):
            findings.append(f"a class name {cls!r}{_in(layer)} that is not a string")
        elif cls in _DATA_CLASS_NAMES or is_autoopt_class(cls) or (
                is_autoopt_class(registered)):
            continue
        elif cls not in known:
            findings.append(f"class {cls!r}{_in(layer)}, which is not a known tf_keras / "
                            "TF-MOT / keras_autoopt class")
        elif isinstance(module, str) and not module.startswith(_KNOWN_MODULE_PREFIXES):
            findings.append(f"class {cls!r}{_in(layer)} from module {module!r}")
        elif isinstance(registered, str) and registered not in (cls, f"Custom>{cls}") \
                and registered not in known:
            findings.append(f"registered class {registered!r}{_in(layer)}, which is not a "
                            "known tf_keras / TF-MOT / keras_autoopt class")
    return list(dict.fromkeys(findings))


def _json(text: Any, where: str, path: Path, arg: str) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"Received: {arg}={str(path)!r} whose {where} is not valid JSON "
                             f"({err}); {_EXPECTED}.") from None


def _read_h5(path: Path, arg: str) -> tuple[str | None, list[Any]]:
    import h5py

    try:
        with h5py.File(path, "r") as file:
            attrs = dict(file.attrs)
    except OSError as err:
        raise ModelFileError(f"Received: {arg}={str(path)!r}, which cannot be read as HDF5 "
                             f"({err}); {_EXPECTED}.") from None
    if "model_config" not in attrs:
        raise ModelFileError(
            f"Received: {arg}={str(path)!r}, an HDF5 file without a model configuration "
            f"(a weights-only file?); {_EXPECTED}, saved with model.save().")
    version = attrs.get("keras_version")
    if isinstance(version, bytes):
        version = version.decode()
    return version, [_json(attrs["model_config"], "model_config attribute", path, arg)]


def _read_keras(path: Path, arg: str) -> tuple[str | None, list[Any]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelFileError(
                    f"Received: {arg}={str(path)!r}, a zip archive without config.json; "
                    f"{_EXPECTED}.")
            config = _json(archive.read("config.json"), "config.json", path, arg)
            metadata = (_json(archive.read("metadata.json"), "metadata.json", path, arg)
                        if "metadata.json" in names else {})
    except zipfile.BadZipFile as err:
        raise ModelFileError(f"Received: {arg}={str(path)!r}, which is not a valid .keras "
                             f"archive ({err}); {_EXPECTED}.") from None
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    # The compile config (optimizer, loss, metrics) is not read with compile=False.
    model_config = {k: v for k, v in config.items() if k != "compile_config"} \
        if isinstance(config, dict) else config
    return version, [model_config]


def _read_savedmodel(path: Path, arg: str) -> tuple[str | None, list[Any]]:
    from tf_keras.protobuf import saved_metadata_pb2

    if not (path / "saved_model.pb").is_file():
        raise ModelFileError(f"Received: {arg}={str(path)!r}, a folder without saved_model.pb; "
                             f"{_EXPECTED}.")
    metadata_file = path / "keras_metadata.pb"
    if not metadata_file.is_file():
        raise ModelFileError(
            f"Received: {arg}={str(path)!r}, a SavedModel without Keras metadata "
            f"(keras_metadata.pb); {_EXPECTED}, saved with tf_keras model.save().")
    metadata = saved_metadata_pb2.SavedMetadata()
    try:
        metadata.ParseFromString(metadata_file.read_bytes())
    except Exception as err:  # protobuf's DecodeError
        raise ModelFileError(f"Received: {arg}={str(path)!r} whose keras_metadata.pb cannot be "
                             f"parsed ({err}); {_EXPECTED}.") from None
    configs = [_json(node.metadata, f"metadata of {node.node_path}", path, arg)
               for node in metadata.nodes]
    version = metadata.nodes[0].version.producer if metadata.nodes else None
    return (str(version) if version is not None else None), configs


def detect_format(path: Path, arg: str = "model") -> str:
    """``"keras"``, ``"h5"`` or ``"savedmodel"``, from the file's content first.

    Raises:
        ModelFileError: For a missing path or a file of none of these formats.
    """
    if path.is_dir():
        return "savedmodel"
    if not path.is_file():
        raise ModelFileError(f"Received: {arg}={str(path)!r}; expected an existing model file "
                             "(.keras, .h5 or a SavedModel folder).")
    with open(path, "rb") as file:
        head = file.read(8)
    if head == _HDF5_SIGNATURE:
        return "h5"
    if head.startswith(b"PK"):
        return "keras"
    raise ModelFileError(f"Received: {arg}={str(path)!r}, which is neither an HDF5 file nor a "
                         f"zip archive; {_EXPECTED}.")


def inspect_model_file(path: str | Path, *, arg: str = "model") -> ModelFileInfo:
    """Read a model file's configuration and list what would run code on load.

    Nothing from the file is deserialized: the configuration is read as JSON.

    Args:
        path: A ``.keras`` or ``.h5`` file, or a SavedModel folder.
        arg: The argument's name in error messages.

    Returns:
        The `ModelFileInfo`; its ``findings`` are empty for a safe file.

    Raises:
        ModelFileError: If the path does not exist or holds no readable
            tf_keras model configuration.
    """
    path = Path(path)
    fmt = detect_format(path, arg)
    reader = {"h5": _read_h5, "keras": _read_keras, "savedmodel": _read_savedmodel}[fmt]
    version, configs = reader(path, arg)
    findings = [finding for config in configs for finding in find_unsafe(config)]
    return ModelFileInfo(path=str(path), format=fmt, keras_version=version,
                         configs=tuple(configs), findings=tuple(dict.fromkeys(findings)))
