"""Export ``tf_keras`` models to ``.tflite`` (float32, dynamic range, float16, int8), verified.

`export_for_target` exports for a device target (`keras_autoopt.targets`):
the modes it runs, a fixed batch of 1, int8 input / output, a C array, and
TFLite's sparse encoding of pruned weights where the runtime reads it.
"""

from keras_autoopt.export._c_source import write_c_source
from keras_autoopt.export._for_target import convert_for_target, export_for_target
from keras_autoopt.export._sparse import SPARSE_MIN_SPEEDUP, SPARSE_MIN_ZEROS
from keras_autoopt.export._tflite import EXPORT_MODES, ExportResult, export_tflite
from keras_autoopt.export._verification import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_MIN_TOP1_AGREEMENT,
    DEFAULT_TOLERANCES,
    SANITY_MIN_TOP1_AGREEMENT,
    VERIFY_LEVELS,
    ExportVerificationError,
)

__all__ = [
    "DEFAULT_MAX_ACCURACY_DROP",
    "DEFAULT_MIN_TOP1_AGREEMENT",
    "DEFAULT_TOLERANCES",
    "EXPORT_MODES",
    "SANITY_MIN_TOP1_AGREEMENT",
    "SPARSE_MIN_SPEEDUP",
    "SPARSE_MIN_ZEROS",
    "VERIFY_LEVELS",
    "ExportResult",
    "ExportVerificationError",
    "convert_for_target",
    "export_for_target",
    "export_tflite",
    "write_c_source",
]
