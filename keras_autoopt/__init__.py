"""keras_autoopt: search, compress and export accurate, cheap TFLite models.

Importing this package is cheap: it sets ``TF_USE_LEGACY_KERAS=1`` (if unset)
and arranges for keras-tuner to take its ``tf_keras`` mode whenever it is
imported (see ``keras_autoopt._env``); TensorFlow, TF-MOT and keras-tuner are
loaded when a public name is first used (PEP 562). Import it before
keras_tuner (tensorflow, keras and TF-MOT may come first).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from keras_autoopt import _env

_env.enable_legacy_keras()
_env.install_keras_tuner_hook()
if "tensorflow" in sys.modules or "keras_tuner" in sys.modules:
    # Loaded already (their cost is paid): check now that they run on tf_keras.
    from keras_autoopt import _backend  # noqa: F401

__version__ = "0.1.0"

#: Where each public name is defined; it is imported from there on first use.
_PUBLIC = {
    # keras_autoopt.compress
    "ClusteringStep": "keras_autoopt.compress",
    "CompressionHyperModel": "keras_autoopt.compress",
    "CompressionPlan": "keras_autoopt.compress",
    "CompressionSpace": "keras_autoopt.compress",
    "PruningStep": "keras_autoopt.compress",
    "QATStep": "keras_autoopt.compress",
    "StructuredPruningStep": "keras_autoopt.compress",
    "auto_compress": "keras_autoopt.compress",
    "channel_importance": "keras_autoopt.compress",
    "prune_by_ratio": "keras_autoopt.compress",
    "prune_channels": "keras_autoopt.compress",
    "train_mixed_precision": "keras_autoopt.compress",
    # keras_autoopt.config
    "ConfigError": "keras_autoopt.config",
    "PipelineConfig": "keras_autoopt.config",
    "load_config": "keras_autoopt.config",
    # keras_autoopt.data
    "Dataset": "keras_autoopt.data",
    "DatasetError": "keras_autoopt.data",
    "from_arrays": "keras_autoopt.data",
    "from_image_folder": "keras_autoopt.data",
    "from_npz": "keras_autoopt.data",
    "from_tf_dataset": "keras_autoopt.data",
    "load_dataset": "keras_autoopt.data",
    # keras_autoopt.distill
    "DistillationHyperModel": "keras_autoopt.distill",
    "DistillationSpace": "keras_autoopt.distill",
    "Distiller": "keras_autoopt.distill",
    "FeatureDistillation": "keras_autoopt.distill",
    "LogitsDistillation": "keras_autoopt.distill",
    # keras_autoopt.export
    "EXPORT_MODES": "keras_autoopt.export",
    "ExportResult": "keras_autoopt.export",
    "ExportVerificationError": "keras_autoopt.export",
    "convert_for_target": "keras_autoopt.export",
    "export_for_target": "keras_autoopt.export",
    "export_tflite": "keras_autoopt.export",
    "write_c_source": "keras_autoopt.export",
    # keras_autoopt.load
    "Keras3ConversionError": "keras_autoopt.load",
    "ModelFileError": "keras_autoopt.load",
    "TrustedModelWarning": "keras_autoopt.load",
    "UnsafeModelError": "keras_autoopt.load",
    "convert_keras3_model": "keras_autoopt.load",
    "copy_weights_to_keras3": "keras_autoopt.load",
    "inspect_model_file": "keras_autoopt.load",
    "load_keras3_file": "keras_autoopt.load",
    "load_model_file": "keras_autoopt.load",
    # keras_autoopt.measure
    "TFLiteMetrics": "keras_autoopt.measure",
    "TFLiteRunner": "keras_autoopt.measure",
    "measure_on_target": "keras_autoopt.measure",
    "measure_tflite": "keras_autoopt.measure",
    # keras_autoopt.pipeline
    "PipelineResult": "keras_autoopt.pipeline",
    "run_pipeline": "keras_autoopt.pipeline",
    "run_worker": "keras_autoopt.pipeline",
    # keras_autoopt.report
    "environment_info": "keras_autoopt.report",
    "write_report": "keras_autoopt.report",
    # keras_autoopt.search
    "ClassifierHyperModel": "keras_autoopt.search",
    "Constraints": "keras_autoopt.search",
    "ConvNetHyperModel": "keras_autoopt.search",
    "DenseHyperModel": "keras_autoopt.search",
    "DeployableTuner": "keras_autoopt.search",
    "FailOnNonFiniteLoss": "keras_autoopt.search",
    "GreedyOracle": "keras_autoopt.search",
    "ORACLES": "keras_autoopt.search",
    "Objective": "keras_autoopt.search",
    "OptimizerSpace": "keras_autoopt.search",
    "OptunaOracle": "keras_autoopt.search",
    "ParetoTrial": "keras_autoopt.search",
    "SearchStopped": "keras_autoopt.search",
    "SetupError": "keras_autoopt.search",
    "TUNERS": "keras_autoopt.search",
    "TransferHyperModel": "keras_autoopt.search",
    "TrialLogger": "keras_autoopt.search",
    "estimate_model": "keras_autoopt.search",
    "hypervolume": "keras_autoopt.search",
    "make_oracle": "keras_autoopt.search",
    "measure_before_training": "keras_autoopt.search",
    "make_tuner": "keras_autoopt.search",
    "oracle_objectives": "keras_autoopt.search",
    "pareto_front": "keras_autoopt.search",
    "set_debug": "keras_autoopt.search",
    # keras_autoopt.targets
    "TARGETS": "keras_autoopt.targets",
    "Target": "keras_autoopt.targets",
    "get_target": "keras_autoopt.targets",
}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_autoopt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
