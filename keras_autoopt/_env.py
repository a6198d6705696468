"""What must happen before TensorFlow and keras-tuner are imported, without importing them.

``import keras_autoopt`` is cheap (the command line's ``--help`` and its
argument errors never load TensorFlow), yet the promise of the package holds:
everything it runs is Keras 2 (``tf_keras``), which TF Model Optimization
needs, whatever the user imported before it. What is done for that, here and
in `keras_autoopt._backend`, once, visibly:

1. `enable_legacy_keras` sets ``TF_USE_LEGACY_KERAS=1``. TensorFlow reads it
   when it is imported and again when ``tf.keras`` is first used (a lazy
   module), so ``tf.keras`` is ``tf_keras`` unless it was used before, bound
   to Keras 3. TF-MOT sets the same variable when it is imported.
2. `install_keras_tuner_hook` puts a finder on ``sys.meta_path`` that, when
   ``keras_tuner`` is first imported by anyone, runs its import inside
   `legacy_keras_modules` and then loads `keras_autoopt._backend`. The finder
   removes itself after that one import; `keras_autoopt._backend` removes it
   too.
3. `legacy_keras_modules` makes ``sys.modules["keras"]`` be ``tf_keras`` and
   ``sys.modules["tensorflow.keras"]`` be tf_keras's API for the length of
   keras-tuner's import: keras-tuner 1.4.8 picks its Keras once, then
   (``tf_keras`` has no ``version()``, so it takes its legacy mode, whose
   ``from tensorflow.keras import *`` then reads tf_keras even where
   ``tf.keras`` is Keras 3).

Imported before keras_autoopt, in any order, these work: ``keras``
(Keras 3), ``tensorflow`` (``tf.keras`` then becomes ``tf_keras`` if it was
not used yet, and stays Keras 3 if it was: keras_autoopt never uses
``tf.keras``, TF-MOT and keras-tuner are given ``tf_keras`` explicitly, and
the TFLite converter tells the two apart), and TF-MOT. What cannot work
raises ``ImportError`` with the reason and the fix, before anything is
changed:

- ``keras_tuner`` imported in its Keras 3 (multi-backend) mode: it rejects
  ``tf_keras`` models and cannot switch (`keras_tuner_problem`);
- ``TF_USE_LEGACY_KERAS`` set to a value other than true.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterator
from typing import Any

LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"
_TRUE_VALUES = ("1", "true", "True")
#: The module TensorFlow makes ``tf.keras`` when ``TF_USE_LEGACY_KERAS`` is true.
TF_KERAS_API = "tf_keras.api._v2.keras"

HOW_TO_FIX = (
    "keras_autoopt runs on Keras 2 (tf_keras) because TF Model Optimization "
    "supports nothing else. Import keras_autoopt before keras_tuner (tensorflow "
    "and keras may come first), or set the environment variable "
    "TF_USE_LEGACY_KERAS=1 (or leave it unset) before starting Python."
)


def keras_tuner_problem() -> str | None:
    """Why the ``keras_tuner`` already imported cannot run tf_keras models, if it cannot.

    Reads ``sys.modules`` only: nothing is imported.

    Returns:
        None if ``keras_tuner`` is not imported, or is in its legacy
        (``tf_keras``) mode; otherwise the reason, with what to do.
    """
    config = sys.modules.get("keras_tuner.src.backend.config")
    if "keras_tuner" not in sys.modules or config is None:
        return None
    if not config.multi_backend():
        return None
    return (
        "keras_tuner was imported before keras_autoopt, in its Keras 3 "
        "(multi-backend) mode, so it rejects tf_keras models, and it cannot "
        "switch: keras-tuner picks its Keras once, when it is first imported. "
        "keras_autoopt runs on Keras 2 (tf_keras) because TF Model Optimization "
        "supports nothing else. Import keras_autoopt before keras_tuner "
        "(tensorflow and keras may come first); keras_tuner imported after it "
        "runs tf_keras models."
    )


def enable_legacy_keras() -> None:
    """Set ``TF_USE_LEGACY_KERAS=1``, or refuse what cannot run on tf_keras.

    Cheap: it imports nothing. TensorFlow may already be imported: its
    ``tf.keras``, if not used yet, then becomes tf_keras when first used.

    Raises:
        ImportError: If the variable holds a value other than true, or
            ``keras_tuner`` was imported in its Keras 3 mode
            (`keras_tuner_problem`). Nothing is changed then.
    """
    value = os.environ.get(LEGACY_KERAS_ENV)
    if value is not None and value not in _TRUE_VALUES:
        raise ImportError(
            f"Received: {LEGACY_KERAS_ENV}={value!r}; expected unset or one of "
            f"{_TRUE_VALUES}. {HOW_TO_FIX}"
        )
    problem = keras_tuner_problem()
    if problem is not None:
        raise ImportError(problem)
    os.environ[LEGACY_KERAS_ENV] = "1"


@contextlib.contextmanager
def modules_are(modules: dict[str, Any]) -> Iterator[None]:
    """Make ``sys.modules[name]`` be ``module`` for each item inside the block, restored after.

    Args:
        modules: Module name -> the module object to find under that name.
    """
    missing = object()
    saved = {name: sys.modules.get(name, missing) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is missing:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def legacy_keras_modules() -> contextlib.AbstractContextManager[None]:
    """``keras`` is ``tf_keras`` and ``tensorflow.keras`` tf_keras's API, inside the block.

    keras-tuner imported inside it takes its legacy mode with tf_keras, even
    where ``tf.keras`` is Keras 3. Imports ``tf_keras`` (and so TensorFlow).
    """
    import tf_keras

    return modules_are({"keras": tf_keras,
                        "tensorflow.keras": importlib.import_module(TF_KERAS_API)})


class _LegacyKerasTunerLoader(importlib.abc.Loader):
    """keras-tuner's own loader, run inside `legacy_keras_modules`; then our backend."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with legacy_keras_modules():
            self._loader.exec_module(module)
        importlib.import_module("keras_autoopt._backend")


class _KerasTunerHook(importlib.abc.MetaPathFinder):
    """Finds ``keras_tuner`` like the path finder does, with `_LegacyKerasTunerLoader`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras_tuner":
            return None
        remove_keras_tuner_hook()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _LegacyKerasTunerLoader(spec.loader)
        return spec


_HOOK = _KerasTunerHook()


def install_keras_tuner_hook() -> None:
    """Make a later ``import keras_tuner`` take its tf_keras (legacy) mode."""
    if "keras_tuner" not in sys.modules and _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


def remove_keras_tuner_hook() -> None:
    """Take the finder of `install_keras_tuner_hook` off ``sys.meta_path``."""
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_HOOK)
