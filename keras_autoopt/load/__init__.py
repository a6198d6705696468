"""Models in: load the model files users point us at, never running their code unasked.

`load_model_file` reads a ``.keras`` / ``.h5`` / SavedModel's configuration
as JSON first (`inspect_model_file`) and refuses what would run code on load
(``Lambda`` layers, serialized Python functions, unknown classes) unless the
caller passes ``trust_model=True``.
"""

from keras_autoopt.load._inspect import (
    MODEL_SUFFIXES,
    ModelFileError,
    ModelFileInfo,
    UnsafeModelError,
    find_unsafe,
    inspect_model_file,
    known_class_names,
)
from keras_autoopt.load._keras3 import (
    SUPPORTED_LAYERS as KERAS3_SUPPORTED_LAYERS,
)
from keras_autoopt.load._keras3 import (
    Keras3ConversionError,
    as_tf_keras,
    convert_keras3_config,
    convert_keras3_model,
    copy_weights_to_keras3,
    is_keras3_file,
    is_keras3_model,
    load_keras3_file,
)
from keras_autoopt.load._load import TrustedModelWarning, load_model_file

__all__ = [
    "MODEL_SUFFIXES",
    "ModelFileError",
    "ModelFileInfo",
    "TrustedModelWarning",
    "UnsafeModelError",
    "find_unsafe",
    "inspect_model_file",
    "known_class_names",
    "load_model_file",
    "KERAS3_SUPPORTED_LAYERS",
    "Keras3ConversionError",
    "as_tf_keras",
    "convert_keras3_config",
    "convert_keras3_model",
    "copy_weights_to_keras3",
    "is_keras3_file",
    "is_keras3_model",
    "load_keras3_file",
]
