"""Typed records of the run report (``report.json``).

The compression report's records are in `keras_autoopt.report._records_compression`,
the Pareto section's in `keras_autoopt.report._records_pareto`. The records are the
schema: `validate_report` and `validate_compression_report`
check a report dict with ``RunReport.model_validate`` and
``CompressionReport.model_validate``, and tests build their reports from them
(``RunReport(...).model_dump()``). Every record takes extra keys and keeps
them (``report.json`` holds them; ``report.md`` lists the ``dataset`` and
``search`` extras). Counts and sizes are non-negative ints; NumPy scalars are
accepted where Python numbers are. Accuracies and other fractions are in
[0, 1], not percentages; ``score``, ``accuracy``, latencies and the
verification figures may be NaN (``null`` in JSON, ``n/a`` in Markdown),
``max_abs_diff`` and ``tolerance`` may be infinite (``null`` in JSON).
``model_dump(mode="json")`` of a validated report equals the JSON written.
"""

from __future__ import annotations

from keras_autoopt.report._records_compression import CompressionPointer, Dataset, ExportMode
from keras_autoopt.report._records_fields import (
    Count,
    DirectionName,
    Environment,
    Fraction,
    FreeDict,
    Latency,
    NonEmptyStr,
    OptCount,
    OptFlag,
    OptKeyConfusion,
    OptKeyCount,
    OptKeyDiff,
    OptKeyFraction,
    OptKeyLimitFraction,
    OptKeySeconds,
    OptReal,
    OptStr,
    Record,
    RelPath,
    Seconds,
    TrialStatusName,
    list_of,
    not_none,
    one_of,
)
from keras_autoopt.report._records_pareto import Pareto

__all__ = [
    "ExportFailure",
    "ExportedModel",
    "MODEL_FIDELITY_KEYS",
    "Models",
    "RunReport",
    "Search",
    "Trial",
]


#: ``search.direction``: optional, guessed from the objective when absent.
OptionalDirection = one_of(DirectionName, " (optional; guessed from the objective if absent)")


class Search(Record):
    """How the search ran: the tuner, its completed trials, the best hyperparameters.

    ``trials`` counts the completed trials; ``direction`` (optional) is
    guessed from ``objective`` when absent.
    """

    tuner: NonEmptyStr
    trials: Count
    best_hyperparameters: FreeDict
    wall_time_s: Seconds
    objective: NonEmptyStr
    direction: OptionalDirection = None
    best_trial_id: OptStr = None


class Trial(Record):
    """One trial of the search: its status, score (None or NaN if none) and parameter count.

    Optional keys (None when not measured, absent in older reports):
    ``train_s``, the wall time of the trial's training and compression, in
    seconds; ``val_f1``, the macro F1 of its exported model on the
    validation split.
    """

    trial_id: NonEmptyStr
    status: one_of(TrialStatusName, any_case=True)
    score: OptReal
    params: OptCount
    hyperparameters: FreeDict
    message: OptStr
    train_s: OptKeySeconds = None
    val_f1: OptKeyFraction = None


class ExportedModel(Record):
    """One exported ``.tflite`` model and its figures on the test split.

    ``path`` is relative to the report folder. Optional keys (absent in
    older reports): the quality figures of `measure_tflite` on the test split
    (``precision_macro``, ``recall_macro``, ``f1_macro`` and ``confusion``,
    the confusion matrix; with it, ``report.md`` shows a confusion-matrix
    plot), ``train_s`` (the training time, in seconds, of the trial the
    model came from; None when not known), and the figures of
    `export_tflite`'s check of the export against its Keras model
    (`MODEL_FIDELITY_KEYS`, None where not measured; with them, ``report.md``
    gains an "Export fidelity" table), and ``device``: the file measured for
    the search's target (`DeviceMetrics.to_dict`: ``target``,
    ``flash_bytes``, ``ram_bytes``, ``macs``, ``operators``,
    ``tflm_compatible``, ``reason``, ...; with it, ``report.md`` shows
    flash, RAM and whether the model fits the target), and the export's
    sparse-encoding decision (``sparse_encoding``: whether the file stores
    pruned weights in TFLite's sparse format, ``dense_size_bytes``: the dense
    conversion's size when both were made, ``sparse_reason``: why).
    """

    name: NonEmptyStr
    mode: ExportMode
    path: RelPath
    size_bytes: Count
    gzip_bytes: Count
    accuracy: Fraction
    latency_us_median: Latency
    params: Count
    precision_macro: OptKeyFraction = None
    recall_macro: OptKeyFraction = None
    f1_macro: OptKeyFraction = None
    confusion: OptKeyConfusion = None
    train_s: OptKeySeconds = None
    verify_samples: OptKeyCount = None
    max_abs_diff: OptKeyDiff = None
    top1_agreement: OptKeyFraction = None
    keras_accuracy: OptKeyFraction = None
    tflite_accuracy: OptKeyFraction = None
    device: FreeDict | None = None
    sparse_encoding: OptFlag = None
    dense_size_bytes: OptKeyCount = None
    sparse_reason: OptStr = None


#: The optional keys of an `ExportedModel` that are its export's verification figures.
MODEL_FIDELITY_KEYS: tuple[str, ...] = (
    "verify_samples",
    "max_abs_diff",
    "top1_agreement",
    "keras_accuracy",
    "tflite_accuracy",
)


class ExportFailure(Record):
    """An export that failed verification (nothing was written for it).

    ``reason`` is the error's message; the optional keys are the figures of
    ``ExportVerificationError.to_dict()``.
    """

    name: NonEmptyStr
    mode: ExportMode
    reason: NonEmptyStr
    verify_samples: OptKeyCount = None
    max_abs_diff: OptKeyDiff = None
    tolerance: OptKeyDiff = None
    top1_agreement: OptKeyFraction = None
    min_top1_agreement: OptKeyLimitFraction = None
    keras_accuracy: OptKeyFraction = None
    tflite_accuracy: OptKeyFraction = None
    max_accuracy_drop: OptKeyLimitFraction = None


#: The ``models`` of a run report.
Models = list_of(ExportedModel)
#: The ``export_failures`` of a run report.
ExportFailures = list_of(ExportFailure)


class RunReport(Record):
    """The run report (``report.json``).

    Optional keys: ``config`` (the run configuration as JSON);
    ``export_failures`` (with any, ``report.md`` opens with them);
    ``compression`` (points to the compression report, with the chosen
    stage, see `CompressionPointer`); ``pareto`` (a multi-objective search's
    result, with its own section and two more plots).
    """

    dataset: Dataset
    search: Search
    trials: list_of(Trial)
    models: Models
    config: not_none(FreeDict, "a dict") = None
    environment: Environment
    export_failures: not_none(ExportFailures, "a list of dicts") = None
    compression: not_none(CompressionPointer, "a dict") = None
    pareto: not_none(Pareto, "a dict") = None

