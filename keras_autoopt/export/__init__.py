"""Export ``tf_keras`` models to ``.tflite`` (float32, dynamic range, float16, int8), verified."""

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
    "VERIFY_LEVELS",
    "ExportResult",
    "ExportVerificationError",
    "export_tflite",
]
