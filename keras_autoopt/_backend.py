"""The backend bridge: the only module that imports Keras, keras-tuner and TF-MOT.

keras_autoopt runs on Keras 2 (``tf_keras``) because TF Model Optimization
supports nothing else. Two things must happen before anything else touches
TensorFlow or keras-tuner, and this module does both, once, visibly:

1. ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is first imported, so
   that ``tf.keras is tf_keras``.
2. keras-tuner is imported while ``sys.modules["keras"]`` points at
   ``tf_keras``. keras-tuner 1.4.8 decides at import time whether it runs on
   Keras 3 (``keras.version()`` starting with ``"3."``); ``tf_keras`` has no
   ``version()`` so keras-tuner picks its legacy mode, which uses
   ``tensorflow.keras`` (= ``tf_keras``). ``sys.modules["keras"]`` is restored
   right after.

If TensorFlow's ``tf.keras`` or keras-tuner were already bound to Keras 3
before ``keras_autoopt`` was imported, the switch cannot happen any more and
an ``ImportError`` says what to do.

Every other module of the package imports ``tf``, ``keras``, ``kt`` and
``tfmot`` from here.
"""

from __future__ import annotations

import sys

from keras_autoopt._env import (
    HOW_TO_FIX as _HOW_TO_FIX,
)
from keras_autoopt._env import (
    LEGACY_KERAS_ENV,
    enable_legacy_keras,
    keras_module_is,
    remove_keras_tuner_hook,
)


def _is_keras3(module) -> bool:
    version_fn = getattr(module, "version", None)
    return bool(callable(version_fn) and str(version_fn()).startswith("3."))


enable_legacy_keras()
# This module imports keras_tuner itself (below), in legacy mode: no hook needed any more.
remove_keras_tuner_hook()

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

# ``tf.keras`` is resolved lazily, on first access, from the environment
# variable; if something accessed it before the variable was set, it is
# Keras 3 for the rest of the process.
if _is_keras3(tf.keras) or tf.keras.Model is not tf_keras.Model:
    raise ImportError(
        "TensorFlow was imported, and tf.keras bound to Keras 3, before "
        f"keras_autoopt. {_HOW_TO_FIX}"
    )


def _kt_multi_backend() -> bool:
    from keras_tuner.src.backend import config

    return bool(config.multi_backend())


def _import_keras_tuner():
    already = sys.modules.get("keras_tuner")
    if already is not None:
        if _kt_multi_backend():
            raise ImportError(
                "keras_tuner was imported in Keras 3 mode before keras_autoopt, "
                "so it rejects tf_keras models (keras-tuner picks its Keras once, when "
                "it is imported). Import keras_autoopt before keras_tuner."
            )
        return already
    with keras_module_is(tf_keras):
        import keras_tuner as module
    if _kt_multi_backend():  # pragma: no cover - defensive
        raise ImportError(f"keras_tuner could not be put in legacy mode. {_HOW_TO_FIX}")
    return module


kt = _import_keras_tuner()
keras = tf_keras


def _make_keras_tuner_writes_atomic() -> None:
    """Route keras-tuner's JSON writes through a temporary file and a rename.

    keras-tuner 1.4.8 writes ``oracle.json``, every ``trial.json`` and
    ``tuner0.json`` with ``open(path, "w").write(...)`` (``utils.save_json``,
    the one function all of them call). A process killed during that write
    leaves a truncated file, and the next run cannot reload the search
    (``JSONDecodeError``): hours of trials lost. Local paths are written
    atomically instead (`keras_autoopt._io.atomic_write_text`); other file
    systems (``gs://``, ...) keep keras-tuner's own write.
    """
    import json

    from keras_tuner.src import utils as kt_utils

    from keras_autoopt._io import atomic_write_text

    original = kt_utils.save_json
    if getattr(original, "_keras_autoopt_atomic", False):
        return

    def save_json(path, obj):
        if "://" in str(path):
            return original(path, obj)
        text = json.dumps(obj)
        atomic_write_text(path, text)
        return text

    save_json._keras_autoopt_atomic = True
    save_json.__doc__ = original.__doc__
    kt_utils.save_json = save_json


_make_keras_tuner_writes_atomic()

import tensorflow_model_optimization as tfmot  # noqa: E402

# TF-MOT's registries of supported layers are not in its public API; the
# compression steps ask them whether a layer can be wrapped.
from tensorflow_model_optimization.python.core.clustering.keras import (  # noqa: E402
    clustering_registry,
)
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E402
    default_8bit_quantize_registry,
)
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry  # noqa: E402

__all__ = ["LEGACY_KERAS_ENV", "clustering_registry", "default_8bit_quantize_registry", "keras",
           "kt", "prune_registry", "tf", "tfmot"]
