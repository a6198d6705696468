"""`load_model_file`: load a model file a user points us at, safely by default."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from keras_autoopt._backend import keras
from keras_autoopt._checks import check_bool
from keras_autoopt.load._inspect import (
    ModelFileError,
    UnsafeModelError,
    inspect_model_file,
    tfmot_custom_objects,
)


class TrustedModelWarning(UserWarning):
    """A model file is loaded with ``trust_model=True``: its code may run."""


def _refusal(arg: str, path: Path, findings: tuple[str, ...]) -> str:
    shown = "; ".join(findings[:3]) + (f"; and {len(findings) - 3} more"
                                       if len(findings) > 3 else "")
    return (f"Received: {arg}={str(path)!r} holding {shown}; its Python code would run on "
            "load. Pass --trust-model (trust_model=True) only for files you trust.")


def load_model_file(path: str | os.PathLike, *, arg: str = "model",
                    trust_model: bool = False) -> keras.Model:
    """Load a saved tf_keras model (``.keras``, ``.h5`` or SavedModel folder), or a Keras 3 one.

    A Keras 3 ``.keras`` file is converted to an equivalent tf_keras model
    from its configuration and weights (`load_keras3_file`), without running
    any code from it; a layer the converter does not know (a ``Lambda``, a
    custom class) is refused by name, with or without ``trust_model``.

    Safe by default: before anything is deserialized, the file's model
    configuration is read as JSON (`inspect_model_file`) and a ``Lambda``
    layer, a serialized Python function or a class that is not a known
    tf_keras / TF-MOT / keras_autoopt class is refused with an
    `UnsafeModelError` naming the layer and the file. Models wrapped by TF-MOT
    (pruned, clustered, quantization-aware) load without extra scopes.

    Args:
        path: The file or folder.
        arg: The argument's name in error messages (``model``, ``teacher``,
            ``base_model``).
        trust_model: Load the file the old way, running whatever code it
            holds (with a `TrustedModelWarning`). Only for files you trust.

    Returns:
        The model (not compiled).

    Raises:
        UnsafeModelError: If loading would run code from the file and
            ``trust_model`` is False.
        ModelFileError: If the path does not exist or does not hold a
            loadable tf_keras model, or is a Keras 3 file the converter
            refuses (`Keras3ConversionError`, naming every such layer).
    """
    try:
        check_bool("trust_model", trust_model)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from None
    if not isinstance(path, (str, os.PathLike)):
        raise ModelFileError(f"Received: {arg} of type {type(path).__name__}; expected the "
                             "path of a model file (str or os.PathLike).")
    path = Path(os.fspath(path))
    info = inspect_model_file(path, arg=arg)
    if info.keras_version and str(info.keras_version).startswith("3."):
        # Converted from its JSON and weights alone: nothing in it runs, trusted or not.
        from keras_autoopt.load._keras3 import load_keras3_file

        return load_keras3_file(path, arg=arg)
    if trust_model:
        if info.findings:
            warnings.warn(f"{arg}={str(path)!r} is loaded with trust_model=True; its code "
                          f"({'; '.join(info.findings[:3])}) runs now.",
                          TrustedModelWarning, stacklevel=2)
    elif info.findings:
        raise UnsafeModelError(_refusal(arg, path, info.findings), str(path),
                               list(info.findings))
    scope = keras.utils.custom_object_scope(tfmot_custom_objects())
    try:
        with scope:
            return keras.models.load_model(path, compile=False, safe_mode=not trust_model)
    except Exception as exc:  # the loaders raise many types; name the file and the cause
        cause = " ".join(str(exc).split())
        if len(cause) > 300:
            cause = cause[:297] + "..."
        raise ModelFileError(
            f"Received: {arg}={str(path)!r}; expected a tf_keras model file, but loading "
            f"failed: {type(exc).__name__}: {cause}") from None
