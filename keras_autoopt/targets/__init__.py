"""Device targets: where a model will run, which decides what is exported, measured and constrained.

A `Target` names a runtime (LiteRT, LiteRT + XNNPACK, TFLite Micro, Vela for
the Arm Ethos-U NPUs), the export modes it runs, whether the model is
exported with a fixed batch of 1 and int8 input / output tensors, and the
flash and RAM budgets. `TARGETS` holds the built-in ones; `get_target` reads
a name, a YAML mapping or a `Target`. This package imports neither
TensorFlow nor anything heavy, so ``--target`` is checked before any is
loaded.
"""

from keras_autoopt.targets._registry import DEFAULT_TARGET, TARGETS, get_target
from keras_autoopt.targets._target import (
    RUNTIME_MODES,
    RUNTIMES,
    VELA_ACCELERATORS,
    VELA_DEFAULTS,
    Target,
)

__all__ = [
    "DEFAULT_TARGET",
    "RUNTIMES",
    "RUNTIME_MODES",
    "TARGETS",
    "VELA_ACCELERATORS",
    "VELA_DEFAULTS",
    "Target",
    "get_target",
]
