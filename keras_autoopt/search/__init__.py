"""Search: keras-tuner HyperModels, the optimizer space and tuners by name."""

from keras_autoopt.search._base import ACTIVATIONS, ClassifierHyperModel
from keras_autoopt.search._convnet import POOLINGS, ConvNetHyperModel
from keras_autoopt.search._dense import DenseHyperModel
from keras_autoopt.search._optimizers import (
    CLIPPING,
    LR_SCHEDULES,
    OPTIMIZERS,
    OptimizerSpace,
    schedule_factor,
)
from keras_autoopt.search._progress import TrialLogger, summarize_hyperparameters
from keras_autoopt.search._transfer import (
    BASE_LAYER_NAME,
    STRATEGIES,
    TransferHyperModel,
    freeze_for_strategy,
)
from keras_autoopt.search._tuners import TUNERS, make_tuner

__all__ = [
    "ACTIVATIONS",
    "BASE_LAYER_NAME",
    "CLIPPING",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "POOLINGS",
    "STRATEGIES",
    "TUNERS",
    "ClassifierHyperModel",
    "ConvNetHyperModel",
    "DenseHyperModel",
    "OptimizerSpace",
    "TransferHyperModel",
    "TrialLogger",
    "freeze_for_strategy",
    "make_tuner",
    "schedule_factor",
    "summarize_hyperparameters",
]
