"""Knowledge distillation: a tf_keras `Distiller` model and its keras-tuner HyperModel."""

from keras_autoopt.distill._distiller import UNTRAINED_TEACHER_FACTOR, Distiller
from keras_autoopt.distill._hypermodel import DistillationHyperModel
from keras_autoopt.distill._losses import (
    OUTPUT_KINDS,
    FeatureDistillation,
    LogitsDistillation,
    as_logits,
)
from keras_autoopt.distill._space import (
    DEFAULT_ALPHA,
    DEFAULT_TEMPERATURE,
    LEGACY_HYPERPARAMETERS,
    DistillationSpace,
)

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_TEMPERATURE",
    "LEGACY_HYPERPARAMETERS",
    "OUTPUT_KINDS",
    "UNTRAINED_TEACHER_FACTOR",
    "DistillationHyperModel",
    "DistillationSpace",
    "Distiller",
    "FeatureDistillation",
    "LogitsDistillation",
    "as_logits",
]
