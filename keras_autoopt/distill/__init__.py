"""Knowledge distillation: a tf_keras `Distiller` model and its keras-tuner HyperModel."""

from keras_autoopt.distill._distiller import UNTRAINED_TEACHER_FACTOR, Distiller
from keras_autoopt.distill._hypermodel import DistillationHyperModel
from keras_autoopt.distill._losses import (
    OUTPUT_KINDS,
    FeatureDistillation,
    LogitsDistillation,
    as_logits,
)

__all__ = [
    "OUTPUT_KINDS",
    "UNTRAINED_TEACHER_FACTOR",
    "DistillationHyperModel",
    "Distiller",
    "FeatureDistillation",
    "LogitsDistillation",
    "as_logits",
]
