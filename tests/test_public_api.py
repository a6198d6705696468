"""Snapshot of the public API (issue 12): every public name stays importable.

`SNAPSHOTS` is today's ``__all__`` of the package and of each subpackage, sorted. A name added
to an ``__all__`` must be added here too, deliberately; a name removed or renamed fails here: a
public name that moves keeps working where it was for a release (see STYLE.md). Names are read
with `getattr`, so a lazily imported package (PEP 562 ``__getattr__``) passes as long as each
name resolves.
"""

from __future__ import annotations

import importlib
from collections import Counter

import pytest

import keras_autoopt

SNAPSHOTS = {
    "keras_autoopt": [
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
        "EXPORT_MODES",
        "ExportResult",
        "ExportVerificationError",
        "FailOnNonFiniteLoss",
        "FeatureDistillation",
        "GreedyOracle",
        "LogitsDistillation",
        "ModelFileError",
        "ORACLES",
        "Objective",
        "OptimizerSpace",
        "OptunaOracle",
        "ParetoTrial",
        "PipelineConfig",
        "PipelineResult",
        "PruningStep",
        "QATStep",
        "SearchStopped",
        "SetupError",
        "TFLiteMetrics",
        "TFLiteRunner",
        "TUNERS",
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
    ],
    "keras_autoopt.data": [
        "Dataset",
        "DatasetError",
        "from_arrays",
        "from_image_folder",
        "from_npz",
        "from_tf_dataset",
        "load_dataset",
    ],
    "keras_autoopt.load": [
        "MODEL_SUFFIXES",
        "ModelFileError",
        "ModelFileInfo",
        "TrustedModelWarning",
        "UnsafeModelError",
        "find_unsafe",
        "inspect_model_file",
        "known_class_names",
        "load_model_file",
    ],
    "keras_autoopt.export": [
        "DEFAULT_MAX_ACCURACY_DROP",
        "DEFAULT_MIN_TOP1_AGREEMENT",
        "DEFAULT_TOLERANCES",
        "EXPORT_MODES",
        "ExportResult",
        "ExportVerificationError",
        "SANITY_MIN_TOP1_AGREEMENT",
        "VERIFY_LEVELS",
        "export_tflite",
    ],
    "keras_autoopt.measure": [
        "MIN_LATENCY_RUNS",
        "TFLiteMetrics",
        "TFLiteRunner",
        "measure_tflite",
        "top1_labels",
    ],
    "keras_autoopt.report": [
        "Budget",
        "CompressedModel",
        "CompressionPointer",
        "CompressionReport",
        "CompressionReportPaths",
        "CompressionStage",
        "Dataset",
        "ExportFailure",
        "ExportedModel",
        "Pareto",
        "ParetoObjective",
        "ParetoTrial",
        "ReportPaths",
        "RunReport",
        "Search",
        "Trial",
        "environment_info",
        "format_models_table",
        "format_stages_table",
        "validate_compression_report",
        "validate_report",
        "write_compression_report",
        "write_report",
    ],
    "keras_autoopt.compress": [
        "AutoCompressResult",
        "CENTROID_INITS",
        "ClusteringStep",
        "CompressionHyperModel",
        "CompressionLogger",
        "CompressionPlan",
        "CompressionStep",
        "MIXED_POLICIES",
        "PruningStep",
        "QATStep",
        "QAT_SCHEMES",
        "SCHEDULES",
        "SPARSITY_TOLERANCE",
        "STEP_TYPES",
        "Stage",
        "UnsupportedLayerError",
        "allocate",
        "auto_compress",
        "check_target",
        "clone_with_weights",
        "kernel_stats",
        "layer_sensitivity",
        "overall_sparsity",
        "resolve_scheme",
        "train_mixed_precision",
        "with_policy",
    ],
    "keras_autoopt.distill": [
        "DistillationHyperModel",
        "Distiller",
        "FeatureDistillation",
        "LogitsDistillation",
        "OUTPUT_KINDS",
        "UNTRAINED_TEACHER_FACTOR",
        "as_logits",
    ],
    "keras_autoopt.search": [
        "ACTIVATIONS",
        "BASE_LAYER_NAME",
        "BUILTIN_OBJECTIVES",
        "CLIPPING",
        "ClassifierHyperModel",
        "CompressionSpace",
        "Constraints",
        "ConvNetHyperModel",
        "DEBUG_ENV",
        "DIRECTIONS",
        "DISTRIBUTED_ENV",
        "DenseHyperModel",
        "DeployableTuner",
        "FailOnNonFiniteLoss",
        "GreedyOracle",
        "LR_SCHEDULES",
        "NonFiniteLossError",
        "OPTIMIZERS",
        "ORACLES",
        "Objective",
        "OptimizerSpace",
        "OptunaOracle",
        "POOLINGS",
        "PRUNING_SCHEDULES",
        "ParetoTrial",
        "REJECTED_PREFIX",
        "RejectedTrialError",
        "SAMPLERS",
        "STRATEGIES",
        "SearchStopped",
        "SetupError",
        "TFLITE_FLOOR_BYTES",
        "TUNERS",
        "TransferHyperModel",
        "TrialLeases",
        "TrialLogger",
        "WorkerHeartbeat",
        "check_setup",
        "debug_enabled",
        "default_reference",
        "distributed_env",
        "distributed_role",
        "dominates",
        "estimate_int8_bytes",
        "failure_reason",
        "failures_stop_cleanly",
        "freeze_for_strategy",
        "from_optuna_distribution",
        "hypervolume",
        "is_rejected",
        "make_oracle",
        "make_tuner",
        "oracle_objectives",
        "pareto_front",
        "parse_objectives",
        "schedule_factor",
        "set_debug",
        "summarize_hyperparameters",
        "to_optuna_distribution",
    ],
}


def _module(name):
    return keras_autoopt if name == "keras_autoopt" else importlib.import_module(name)


def test_snapshots_are_sorted_and_unique():
    for module_name, names in SNAPSHOTS.items():
        assert names == sorted(set(names)), f"SNAPSHOTS[{module_name!r}] must be sorted, unique"


@pytest.mark.parametrize("module_name", list(SNAPSHOTS))
def test_all_has_no_duplicates(module_name):
    counts = Counter(_module(module_name).__all__)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    assert not duplicates, f"{module_name}.__all__ lists these names twice: {duplicates}"


@pytest.mark.parametrize("module_name", list(SNAPSHOTS))
def test_all_matches_snapshot(module_name):
    names = set(_module(module_name).__all__)
    snapshot = set(SNAPSHOTS[module_name])
    added, removed = sorted(names - snapshot), sorted(snapshot - names)
    assert sorted(names) == SNAPSHOTS[module_name], (
        f"{module_name}.__all__ changed: added {added}, removed {removed}. A new public name "
        f"goes into SNAPSHOTS in tests/test_public_api.py; a removed one must keep working."
    )


@pytest.mark.parametrize("module_name", list(SNAPSHOTS))
def test_every_snapshot_name_is_importable(module_name):
    module = _module(module_name)
    missing = []
    for name in SNAPSHOTS[module_name]:
        try:
            getattr(module, name)
        except Exception as error:  # report every failing name at once
            missing.append(f"{name} ({type(error).__name__}: {error})")
    assert not missing, f"{module_name} no longer provides: " + "; ".join(missing)
