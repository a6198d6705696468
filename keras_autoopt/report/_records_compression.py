"""The records of the compression report (``compression.json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo, field_validator

from keras_autoopt.report._records_fields import (
    Count,
    Environment,
    ExportModeName,
    Flag,
    Fraction,
    Latency,
    NonEmptyStr,
    OptKeyConfusion,
    OptKeyFraction,
    Ratio,
    Record,
    RelPath,
    Seconds,
    StrictFraction,
    check_unique,
    checked,
    invariant_error,
    list_of,
    named_map,
    not_none,
    one_of,
)
from keras_autoopt.report._values import describe, is_real, key_path

_LAYER_NAMES = "layer names as str"

#: A TFLite conversion mode, one of `keras_autoopt._defaults.EXPORT_MODES`.
ExportMode = one_of(ExportModeName)

#: {layer: fraction of zero kernel weights}.
LayerSparsity = named_map(
    checked(
        float,
        lambda v: is_real(v) and 0 <= v <= 1,
        "a float in [0, 1] (the fraction of zero weights, not a percentage)",
        float,
    ),
    _LAYER_NAMES,
)
#: {layer: number of distinct kernel values}.
UniqueWeights = named_map(Count, _LAYER_NAMES)


class Dataset(Record):
    """The data a run used: its name and split sizes (extra keys, e.g. ``classes``, allowed)."""

    name: NonEmptyStr
    n_train: Count
    n_val: Count
    n_test: Count


class CompressedModel(Record):
    """The Keras model a compression report starts from."""

    name: NonEmptyStr
    params: Count


class Budget(Record):
    """The accuracy budget of a compression: the stages may lose at most this much."""

    max_accuracy_drop: StrictFraction
    baseline_accuracy: StrictFraction


class CompressionStage(Record):
    """One measured stage of a compression (a ``.tflite`` file and its figures).

    ``path`` is relative to the compression report's folder; the ratios are the
    float32 stage's sizes over this stage's (NaN when not available). Optional
    keys (absent in older reports): the macro ``precision_macro``,
    ``recall_macro`` and ``f1_macro`` and the ``confusion`` matrix on the test
    split (`measure_tflite`).
    """

    stage: NonEmptyStr
    mode: ExportMode
    path: RelPath
    sparsity: StrictFraction
    layer_sparsity: LayerSparsity
    unique_weights: UniqueWeights
    accuracy: Fraction
    size_bytes: Count
    gzip_bytes: Count
    latency_us_median: Latency
    size_ratio: Ratio
    gzip_ratio: Ratio
    within_budget: Flag
    wall_time_s: Seconds
    precision_macro: OptKeyFraction = None
    recall_macro: OptKeyFraction = None
    f1_macro: OptKeyFraction = None
    confusion: OptKeyConfusion = None


def _unique_stage_names(stages: list[CompressionStage]) -> list[CompressionStage]:
    check_unique([stage.stage for stage in stages],
                 lambda path, index: key_path(key_path(path, index), "stage"), "stage name")
    return stages


#: The stages of a compression, their names unique.
Stages = Annotated[list_of(CompressionStage), AfterValidator(_unique_stage_names)]

#: {layer: {sparsity as str, e.g. "0.5": accuracy drop}}.
Sensitivity = named_map(
    named_map(
        checked(float, is_real, "an accuracy drop as a float (a fraction; NaN allowed)", float),
        "sparsities as str (JSON object keys), e.g. '0.5'",
        "a dict {sparsity: accuracy drop}",
    ),
    _LAYER_NAMES,
    "a dict {layer: {sparsity: accuracy drop}}",
)


OptionalSensitivity = not_none(Sensitivity, "a dict {layer: {sparsity: accuracy drop}}")


class CompressionReport(Record):
    """The compression report (``compression.json``).

    ``chosen`` is the name of the chosen stage (the least ``budget.minimize``
    within budget; gzip size in older reports), None when no stage is within
    budget. Accuracies, the budget and sparsities are fractions, not
    percentages; NaN is written as ``null``.
    """

    model: CompressedModel
    dataset: Dataset
    budget: Budget
    stages: Stages
    chosen: str | None
    environment: Environment
    sensitivity: OptionalSensitivity = None

    @field_validator("chosen", mode="before")
    @classmethod
    def _chosen_names_a_stage(cls, chosen: Any, info: ValidationInfo) -> Any:
        stages = info.data.get("stages")
        names = [stage.stage for stage in stages] if stages is not None else None
        if chosen is None or (isinstance(chosen, str) and (names is None or chosen in names)):
            return chosen
        listed = names if names is not None else "(see 'stages')"
        raise invariant_error(
            lambda path: (
                f"Received: {path}={describe(chosen)}; expected None (no stage within "
                f"budget) or one of the stage names {listed}."
            )
        )


#: The chosen stage's record, or None when no stage is within budget.
ChosenStage = checked(
    CompressionStage | None,
    lambda v: v is None or isinstance(v, (Mapping, Record)),
    "a dict or None",
    None,
)


class CompressionPointer(Record):
    """The ``compression`` key of a run report: where the compression report is, what it chose.

    ``report`` is the path of ``compression.md`` relative to the run report's
    folder; ``chosen`` is the chosen stage's record (None when no stage is
    within budget), its ``path`` relative to the compression report's folder.
    """

    report: RelPath
    chosen: ChosenStage
    budget: Budget
