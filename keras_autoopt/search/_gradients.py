"""Cleanup of TensorFlow's gradient registry, which keeps every trial's graphs alive."""

from __future__ import annotations

import inspect

from keras_autoopt._backend import tf

#: Names `tf.custom_gradient` gives the gradients it registers while tracing a graph.
_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def _gradient_registry() -> dict:
    """TensorFlow's global registry of gradient functions, name -> entry.

    Every time a ``tf.custom_gradient`` function is traced into a graph (in
    each trace of a train step: the optimizer's all-reduce of the gradients,
    TF-MOT's clustering wrappers), TensorFlow registers its gradient function
    there under a fresh ``CustomGradient-<n>`` name and never removes it
    (tensorflow/tensorflow#97697, keras-team/tf-keras#286 and #898). The
    function's closure holds the traced tensors, so each entry keeps its whole
    FuncGraph alive, whatever ``clear_session`` and ``gc.collect`` do.
    """
    return inspect.getmodule(tf.RegisterGradient)._gradient_registry._registry


def _forget_custom_gradients(kept: set[str]) -> None:
    """Drop the ``tf.custom_gradient`` entries registered since ``kept`` was listed.

    An entry is only looked up while a graph that uses it is differentiated,
    i.e. while a train step is traced; once a trial is over, nothing traces
    its models again.
    """
    registry = _gradient_registry()
    for name in [n for n in registry if n.startswith(_CUSTOM_GRADIENT_PREFIX)
                 and n not in kept]:
        del registry[name]
