"""Names and defaults the command line and the config need without loading TensorFlow.

Each constant is defined here once; the modules that implement it import it
from here (``export`` the modes, ``search`` the tuner names, ``pipeline`` the
distributed timings), so a YAML error or ``keras-autoopt --help`` never
imports TensorFlow.
"""

from __future__ import annotations

#: The conversion modes `keras_autoopt.export.export_tflite` accepts.
EXPORT_MODES = ("float32", "dynamic", "float16", "int8")

#: The keras-tuner tuners `keras_autoopt.search.make_tuner` builds by name.
TUNER_NAMES = ("random", "grid", "bayesian", "hyperband")

#: Seconds without a report from a worker after which its trial is handed out again.
DEFAULT_TRIAL_TIMEOUT_S = 600.0

#: Seconds between two reports of a worker on its running trial.
DEFAULT_HEARTBEAT_S = 15.0
