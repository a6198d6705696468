"""What must happen before TensorFlow and keras-tuner are imported, without importing them.

``import keras_autoopt`` is cheap (the command line's ``--help`` and its
argument errors never load TensorFlow), yet the promise of the package holds:
import it first, and ``tensorflow`` / ``keras_tuner`` imported afterwards run
on Keras 2 (``tf_keras``), which TF Model Optimization needs. Two things make
that so, both done here, once, visibly:

1. `enable_legacy_keras` sets ``TF_USE_LEGACY_KERAS=1`` (TensorFlow reads it
   when it is first imported), or raises ``ImportError`` if TensorFlow was
   already imported without it.
2. `install_keras_tuner_hook` puts a finder on ``sys.meta_path`` that, when
   ``keras_tuner`` is first imported by anyone, runs its import while
   ``sys.modules["keras"]`` is ``tf_keras`` (keras-tuner 1.4.8 picks its Keras
   once, at import: ``tf_keras`` has no ``version()``, so it takes its legacy
   mode) and then loads `keras_autoopt._backend`. The finder removes itself
   after that one import; `keras_autoopt._backend` removes it too.
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

HOW_TO_FIX = (
    "keras_autoopt runs on Keras 2 (tf_keras) because TF Model Optimization "
    "supports nothing else. Either set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before starting Python, or import keras_autoopt "
    "before tensorflow, keras and keras_tuner."
)


def enable_legacy_keras() -> None:
    """Set ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported.

    Raises:
        ImportError: If TensorFlow was imported before without the variable, or
            the variable holds another value.
    """
    value = os.environ.get(LEGACY_KERAS_ENV)
    if value is None:
        if "tensorflow" in sys.modules:
            # TensorFlow fixes the module path of ``tensorflow.keras`` when it
            # is imported; setting the variable now would leave a process
            # with two different Keras behind ``tf.keras``.
            raise ImportError(
                "TensorFlow was imported before keras_autoopt without "
                f"{LEGACY_KERAS_ENV}=1, so it is bound to Keras 3. {HOW_TO_FIX}"
            )
        os.environ[LEGACY_KERAS_ENV] = "1"
    elif value not in _TRUE_VALUES:
        raise ImportError(
            f"Received: {LEGACY_KERAS_ENV}={value!r}; expected unset or one of "
            f"{_TRUE_VALUES}. {HOW_TO_FIX}"
        )


@contextlib.contextmanager
def keras_module_is(module: Any) -> Iterator[None]:
    """Make ``sys.modules["keras"]`` be ``module`` inside the block, restored after."""
    missing = object()
    saved = sys.modules.get("keras", missing)
    sys.modules["keras"] = module
    try:
        yield
    finally:
        if saved is missing:
            del sys.modules["keras"]
        else:
            sys.modules["keras"] = saved


class _LegacyKerasTunerLoader(importlib.abc.Loader):
    """keras-tuner's own loader, run while ``keras`` is ``tf_keras``; then our backend."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        import tf_keras

        with keras_module_is(tf_keras):
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
