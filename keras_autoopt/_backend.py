"""The backend bridge: the only module that imports Keras, keras-tuner and TF-MOT.

keras_autoopt runs on Keras 2 (``tf_keras``) because TF Model Optimization
supports nothing else, and it always names ``tf_keras`` itself: ``keras``
here is ``tf_keras``, never ``tf.keras``. Its dependencies are each given
``tf_keras``, once, at import, visibly (see also `keras_autoopt._env`):

1. ``TF_USE_LEGACY_KERAS=1`` is set (`keras_autoopt._env.enable_legacy_keras`):
   ``tf.keras`` is then ``tf_keras`` when first used. If TensorFlow was
   imported before without the variable (e.g. by ``import keras``),
   ``import tensorflow.keras`` would still find Keras 3's files;
   ``sys.modules["tensorflow.keras"]`` is then set to tf_keras's API so that
   both spellings agree. If ``tf.keras`` was already used, it is Keras 3 for
   the rest of the process and is left so (`TF_KERAS_IS_KERAS_3`): nothing
   below needs it.
2. keras-tuner is imported inside `keras_autoopt._env.legacy_keras_modules`:
   keras-tuner 1.4.8 decides at import time whether it runs on Keras 3
   (``keras.version()`` starting with ``"3."``); ``tf_keras`` has no
   ``version()``, so it picks its legacy mode, whose ``from tensorflow.keras
   import *`` reads tf_keras. keras-tuner imported before in its Keras 3
   mode cannot switch: ``ImportError``.
3. TF-MOT picks its Keras in ``tensorflow_model_optimization.python.core.
   keras.compat`` (``tf_keras`` when ``tf.keras`` is Keras 3, else
   ``tf.keras``, which is then tf_keras): nothing to patch, but it is checked.
4. The TFLite converter (``TFLiteConverter.from_keras_model``) takes the
   Keras 3 path only for instances of Keras 3's ``Layer``: tf_keras models
   convert as usual whatever ``tf.keras`` is.

After the imports, `_check_bindings` verifies that keras-tuner and TF-MOT
hold tf_keras; anything else is an ``ImportError``, never a half-working
package.

Every other module of the package imports ``tf``, ``keras``, ``kt`` and
``tfmot`` from here.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from keras_autoopt._env import (
    HOW_TO_FIX as _HOW_TO_FIX,
)
from keras_autoopt._env import (
    LEGACY_KERAS_ENV,
    TF_KERAS_API,
    enable_legacy_keras,
    keras_tuner_problem,
    legacy_keras_modules,
    remove_keras_tuner_hook,
)

enable_legacy_keras()
# This module imports keras_tuner itself (below), in legacy mode: no hook needed any more.
remove_keras_tuner_hook()

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402


def _bind_tf_keras() -> bool:
    """Resolve ``tf.keras``; make ``import tensorflow.keras`` agree with it if it is tf_keras.

    Returns:
        Whether ``tf.keras`` is Keras 3 (it was used before keras_autoopt set
        ``TF_USE_LEGACY_KERAS``).
    """
    if tf.keras.Model is not tf_keras.Model:  # resolved now, from the variable, unless used before
        return True
    spec = importlib.util.find_spec("tensorflow.keras")
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    if origin is None or not origin.is_relative_to(Path(tf_keras.__file__).parent):
        # TensorFlow was imported without the variable: its search path for
        # ``tensorflow.keras`` starts with Keras 3's files.
        sys.modules["tensorflow.keras"] = importlib.import_module(TF_KERAS_API)
    return False


#: Whether ``tf.keras`` is Keras 3 in this process (it was used before
#: ``keras_autoopt`` was imported). Nothing in keras_autoopt uses ``tf.keras``.
TF_KERAS_IS_KERAS_3 = _bind_tf_keras()


def _import_keras_tuner():
    problem = keras_tuner_problem()
    if problem is not None:
        raise ImportError(problem)
    module = sys.modules.get("keras_tuner")
    if module is None:
        with legacy_keras_modules():
            import keras_tuner as module
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

# TF-MOT picks its Keras in `compat` (point 3 of the module docstring), checked below.
from tensorflow_model_optimization.python.core.keras import compat as _tfmot_compat  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E402
    default_8bit_quantize_registry,
)
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry  # noqa: E402


def _check_bindings() -> None:
    """Refuse to load if keras-tuner or TF-MOT does not hold tf_keras.

    Raises:
        ImportError: Naming the dependency, what it holds and what to do.
    """
    from keras_tuner.src.backend import config as kt_config
    from keras_tuner.src.backend import keras as kt_keras

    held = {
        "keras_tuner": "Keras 3 (multi-backend mode)" if kt_config.multi_backend()
        else getattr(kt_keras.Model, "__module__", "?"),
        "tensorflow_model_optimization": getattr(_tfmot_compat.keras.Model, "__module__", "?"),
    }
    wrong = {
        name: module for name, module in held.items()
        if not module.startswith("tf_keras.")
    }
    if wrong:
        found = ", ".join(f"{name} uses {module}" for name, module in wrong.items())
        raise ImportError(
            f"keras_autoopt needs its dependencies on tf_keras, but {found} (they "
            "were imported before keras_autoopt while tf.keras was Keras 3). "
            f"{_HOW_TO_FIX}"
        )


_check_bindings()

__all__ = ["LEGACY_KERAS_ENV", "TF_KERAS_IS_KERAS_3", "clustering_registry",
           "default_8bit_quantize_registry", "keras", "kt", "prune_registry", "tf", "tfmot"]
