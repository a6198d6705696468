"""keras_autoopt: search, compress and export accurate, cheap TFLite models."""

from keras_autoopt import _backend  # noqa: F401  (must run first: sets up tf_keras)

__version__ = "0.1.0"

__all__ = ["__version__"]
