"""Compression: TF-MOT pruning, clustering, QAT and TFLite PTQ as plug-in steps."""

from keras_autoopt.compress._auto import (
    AutoCompressResult,
    allocate,
    auto_compress,
    layer_sensitivity,
)
from keras_autoopt.compress._callbacks import SPARSITY_TOLERANCE, CompressionLogger, check_target
from keras_autoopt.compress._clustering import ClusteringStep
from keras_autoopt.compress._hypermodel import CompressionHyperModel
from keras_autoopt.compress._importance import channel_importance
from keras_autoopt.compress._plan import STEP_TYPES, CompressionPlan, FineTuned, Stage
from keras_autoopt.compress._precision import MIXED_POLICIES, train_mixed_precision, with_policy
from keras_autoopt.compress._pruning import PruningStep
from keras_autoopt.compress._qat import QATStep, resolve_scheme
from keras_autoopt.compress._space import PRUNING_SCHEDULES, CompressionSpace
from keras_autoopt.compress._stats import kernel_stats, overall_sparsity
from keras_autoopt.compress._steps import (
    CENTROID_INITS,
    QAT_SCHEMES,
    SCHEDULES,
    CompressionStep,
    UnsupportedLayerError,
    clone_with_weights,
)
from keras_autoopt.compress._structured import (
    StructuredPruningStep,
    prune_by_ratio,
    prune_channels,
)

__all__ = [
    "CENTROID_INITS",
    "AutoCompressResult",
    "MIXED_POLICIES",
    "PRUNING_SCHEDULES",
    "QAT_SCHEMES",
    "SCHEDULES",
    "SPARSITY_TOLERANCE",
    "STEP_TYPES",
    "ClusteringStep",
    "CompressionHyperModel",
    "CompressionLogger",
    "CompressionPlan",
    "CompressionSpace",
    "CompressionStep",
    "FineTuned",
    "PruningStep",
    "QATStep",
    "Stage",
    "StructuredPruningStep",
    "UnsupportedLayerError",
    "allocate",
    "auto_compress",
    "channel_importance",
    "check_target",
    "clone_with_weights",
    "kernel_stats",
    "layer_sensitivity",
    "overall_sparsity",
    "prune_by_ratio",
    "prune_channels",
    "resolve_scheme",
    "train_mixed_precision",
    "with_policy",
]
