"""keras_autoopt: search, compress and export accurate, cheap TFLite models.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` (if unset) before
TensorFlow is imported and puts keras-tuner in its ``tf_keras`` mode: see
``keras_autoopt._backend``. Import it before tensorflow, keras and
keras_tuner.
"""

from keras_autoopt import _backend  # noqa: F401, I001  (first: binds tf.keras to tf_keras)
from keras_autoopt.compress import (
    ClusteringStep,
    CompressionHyperModel,
    CompressionPlan,
    PruningStep,
    QATStep,
    auto_compress,
    train_mixed_precision,
)
from keras_autoopt.config import ConfigError, PipelineConfig, load_config
from keras_autoopt.data import (
    Dataset,
    DatasetError,
    from_arrays,
    from_image_folder,
    from_npz,
    from_tf_dataset,
    load_dataset,
)
from keras_autoopt.distill import (
    DistillationHyperModel,
    Distiller,
    FeatureDistillation,
    LogitsDistillation,
)
from keras_autoopt.load import (
    ModelFileError,
    TrustedModelWarning,
    UnsafeModelError,
    inspect_model_file,
    load_model_file,
)
from keras_autoopt.export import EXPORT_MODES, ExportResult, ExportVerificationError, export_tflite
from keras_autoopt.measure import TFLiteMetrics, TFLiteRunner, measure_tflite
from keras_autoopt.pipeline import PipelineResult, run_pipeline, run_worker
from keras_autoopt.report import environment_info, write_report
from keras_autoopt.search import (
    ORACLES,
    TUNERS,
    ClassifierHyperModel,
    CompressionSpace,
    Constraints,
    ConvNetHyperModel,
    DenseHyperModel,
    DeployableTuner,
    FailOnNonFiniteLoss,
    GreedyOracle,
    Objective,
    OptimizerSpace,
    OptunaOracle,
    ParetoTrial,
    SearchStopped,
    SetupError,
    TransferHyperModel,
    TrialLogger,
    hypervolume,
    make_oracle,
    make_tuner,
    oracle_objectives,
    pareto_front,
    set_debug,
)

__version__ = "0.1.0"

__all__ = [
    "FailOnNonFiniteLoss",
    "SearchStopped",
    "SetupError",
    "EXPORT_MODES",
    "ORACLES",
    "TUNERS",
    "ClassifierHyperModel",
    "ClusteringStep",
    "CompressionHyperModel",
    "CompressionPlan",
    "CompressionSpace",
    "ConfigError",
    "Constraints",
    "ConvNetHyperModel",
    "Dataset",
    "DatasetError",
    "DenseHyperModel",
    "DeployableTuner",
    "DistillationHyperModel",
    "Distiller",
    "ExportResult",
    "ExportVerificationError",
    "FeatureDistillation",
    "GreedyOracle",
    "LogitsDistillation",
    "ModelFileError",
    "Objective",
    "OptimizerSpace",
    "OptunaOracle",
    "ParetoTrial",
    "PipelineConfig",
    "PipelineResult",
    "PruningStep",
    "QATStep",
    "TFLiteMetrics",
    "TFLiteRunner",
    "TransferHyperModel",
    "TrialLogger",
    "TrustedModelWarning",
    "UnsafeModelError",
    "__version__",
    "auto_compress",
    "environment_info",
    "export_tflite",
    "from_arrays",
    "from_image_folder",
    "from_npz",
    "from_tf_dataset",
    "hypervolume",
    "inspect_model_file",
    "load_config",
    "load_dataset",
    "load_model_file",
    "make_oracle",
    "make_tuner",
    "measure_tflite",
    "oracle_objectives",
    "pareto_front",
    "run_pipeline",
    "run_worker",
    "set_debug",
    "train_mixed_precision",
    "write_report",
]
