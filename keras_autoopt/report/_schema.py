"""Validation of the plain-dict reports, with errors that name the key path.

Two reports are checked here: the run report (``report.json``, built by the
pipeline) and the compression report (``compression.json``, built by the
compression pipeline). Both are read by humans (Markdown) and by programs
(JSON). Every check here names where the bad value sits
(``report['models'][1]['gzip_bytes']``), the value received and what was
expected, so that a bug in the code that built the report is found at once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any

import numpy as np

COMPLETED = "COMPLETED"
"""The trial status (as keras-tuner spells it) of a trial that produced a score."""

_MAX_REPR = 80


def describe(value: Any) -> str:
    """Return a short ``repr`` of ``value`` followed by its type, for error messages.

    Args:
        value: Any value.

    Returns:
        For example ``'12' (str)``.

    """
    text = repr(value)
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    return f"{text} ({type(value).__name__})"


def key_path(parent: str, key: Any) -> str:
    """Return the path of ``key`` inside ``parent``, e.g. ``report['models'][1]``.

    Args:
        parent: The path of the container.
        key: A dict key or a list index.

    Returns:
        The path as text.

    """
    return f"{parent}[{key!r}]"


# --- value checks -----------------------------------------------------------


def is_int(value: Any) -> bool:
    """Return whether ``value`` is an integer (Python or NumPy), booleans excluded.

    Args:
        value: Any value.

    Returns:
        True for ``int`` and ``np.integer`` values that are not booleans.

    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """Return whether ``value`` is a real number (Python or NumPy), booleans excluded.

    Args:
        value: Any value.

    Returns:
        True for ints and floats, NaN and infinities included.

    """
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_missing_number(value: Any) -> bool:
    """Return whether ``value`` is ``None`` or a non-finite float (shown as n/a).

    Args:
        value: A value that passed `is_real` or is ``None``.

    Returns:
        True for ``None``, NaN and infinities.

    """
    return value is None or not math.isfinite(float(value))


@dataclass(frozen=True)
class _Field:
    """One expected value: a predicate and the words that describe it in errors."""

    check: Callable[[Any], bool]
    expected: str


def _nonneg_int(value: Any) -> bool:
    return is_int(value) and value >= 0


def _nonneg_finite(value: Any) -> bool:
    return is_real(value) and math.isfinite(value) and value >= 0


def _nonneg_or_nan(value: Any) -> bool:
    return is_real(value) and (math.isnan(value) or 0 <= value < math.inf)


def _fraction_or_nan(value: Any) -> bool:
    return is_real(value) and (math.isnan(value) or 0 <= value <= 1)


def _fraction(value: Any) -> bool:
    return is_real(value) and 0 <= value <= 1


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _relative_path(value: Any) -> bool:
    # PureWindowsPath sees both "/x" (root) and "C:/x" or "C:x" (drive).
    if not isinstance(value, str) or value == "":
        return False
    as_windows = PureWindowsPath(value)
    return not (as_windows.drive or as_windows.root)


_STR = _Field(lambda v: isinstance(v, str) and v != "", "a non-empty str")
_OPT_STR = _Field(lambda v: v is None or isinstance(v, str), "a str or None")
_COUNT = _Field(_nonneg_int, "a non-negative int")
_OPT_COUNT = _Field(lambda v: v is None or _nonneg_int(v), "a non-negative int or None")
_OPT_REAL = _Field(lambda v: v is None or is_real(v), "a float or None (NaN allowed)")
_SECONDS = _Field(_nonneg_finite, "a finite, non-negative float")
_LATENCY = _Field(_nonneg_or_nan, "a non-negative float (NaN when not measured)")
_FRACTION = _Field(_fraction_or_nan, "a float in [0, 1] (a fraction, not a percentage) or NaN")
_DICT = _Field(lambda v: isinstance(v, Mapping), "a dict")
_REL_PATH = _Field(_relative_path, "a non-empty path relative to the report folder")
_STRICT_FRACTION = _Field(_fraction, "a float in [0, 1] (a fraction, not a percentage)")
_RATIO = _Field(_nonneg_or_nan, "a non-negative float (NaN when not available)")
_BOOL = _Field(_is_bool, "a bool")
_OPT_DICT = _Field(lambda v: v is None or isinstance(v, Mapping), "a dict or None")

_DATASET_FIELDS: dict[str, _Field] = {
    "name": _STR,
    "n_train": _COUNT,
    "n_val": _COUNT,
    "n_test": _COUNT,
}
_SEARCH_FIELDS: dict[str, _Field] = {
    "tuner": _STR,
    "trials": _COUNT,
    "best_hyperparameters": _DICT,
    "wall_time_s": _SECONDS,
    "objective": _STR,
}
_TRIAL_FIELDS: dict[str, _Field] = {
    "trial_id": _STR,
    "status": _STR,
    "score": _OPT_REAL,
    "params": _OPT_COUNT,
    "hyperparameters": _DICT,
    "message": _OPT_STR,
}
MODEL_FIELDS: dict[str, _Field] = {
    "name": _STR,
    "mode": _STR,
    "path": _REL_PATH,
    "size_bytes": _COUNT,
    "gzip_bytes": _COUNT,
    "accuracy": _FRACTION,
    "latency_us_median": _LATENCY,
    "params": _COUNT,
}
_OPT_FRACTION = _Field(
    lambda v: v is None or _fraction_or_nan(v),
    "a float in [0, 1] (a fraction, not a percentage), NaN or None",
)
_OPT_DIFF = _Field(
    lambda v: v is None or (is_real(v) and (math.isnan(v) or v >= 0)),
    "a non-negative float (inf allowed), NaN or None",
)
_OPT_LIMIT_FRACTION = _Field(
    lambda v: v is None or _fraction(v), "a float in [0, 1] (a fraction, not a percentage) or None"
)
# Optional keys of a model record: how its export was checked against the
# Keras model (see `export_tflite`); None where a figure was not measured.
MODEL_FIDELITY_FIELDS: dict[str, _Field] = {
    "verify_samples": _OPT_COUNT,
    "max_abs_diff": _OPT_DIFF,
    "top1_agreement": _OPT_FRACTION,
    "keras_accuracy": _OPT_FRACTION,
    "tflite_accuracy": _OPT_FRACTION,
}
EXPORT_FAILURE_FIELDS: dict[str, _Field] = {"name": _STR, "mode": _STR, "reason": _STR}
# Optional keys of an export failure: the figures of `ExportVerificationError.to_dict`.
EXPORT_FAILURE_FIGURES: dict[str, _Field] = {
    "verify_samples": _OPT_COUNT,
    "max_abs_diff": _OPT_DIFF,
    "tolerance": _OPT_DIFF,
    "top1_agreement": _OPT_FRACTION,
    "min_top1_agreement": _OPT_LIMIT_FRACTION,
    "keras_accuracy": _OPT_FRACTION,
    "tflite_accuracy": _OPT_FRACTION,
    "max_accuracy_drop": _OPT_LIMIT_FRACTION,
}
_DIRECTIONS = ("max", "min")
_TOP_LEVEL = ("dataset", "search", "trials", "models", "environment")

_COMPRESSION_MODEL_FIELDS: dict[str, _Field] = {"name": _STR, "params": _COUNT}
_BUDGET_FIELDS: dict[str, _Field] = {
    "max_accuracy_drop": _STRICT_FRACTION,
    "baseline_accuracy": _STRICT_FRACTION,
}
_STAGE_FIELDS: dict[str, _Field] = {
    "stage": _STR,
    "mode": _STR,
    "path": _REL_PATH,
    "sparsity": _STRICT_FRACTION,
    "layer_sparsity": _DICT,
    "unique_weights": _DICT,
    "accuracy": _FRACTION,
    "size_bytes": _COUNT,
    "gzip_bytes": _COUNT,
    "latency_us_median": _LATENCY,
    "size_ratio": _RATIO,
    "gzip_ratio": _RATIO,
    "within_budget": _BOOL,
    "wall_time_s": _SECONDS,
}
# Per-layer values of a stage: {layer name: value}.
_STAGE_LAYER_FIELDS: dict[str, _Field] = {
    "layer_sparsity": _Field(
        _fraction, "a float in [0, 1] (the fraction of zero weights, not a percentage)"
    ),
    "unique_weights": _COUNT,
}
_COMPRESSION_TOP_LEVEL = ("model", "dataset", "budget", "chosen", "stages", "environment")
_POINTER_FIELDS: dict[str, _Field] = {
    "report": _REL_PATH,
    "chosen": _OPT_DICT,
    "budget": _DICT,
}
_SENSITIVITY = _Field(is_real, "an accuracy drop as a float (a fraction; NaN allowed)")

_PARETO_FIELDS: dict[str, _Field] = {
    "objectives": _Field(
        lambda v: isinstance(v, (list, tuple)) and len(v) >= 1,
        "a non-empty list of {'name': str, 'direction': 'max' | 'min'}",
    ),
    "oracle": _STR,
    "constraints": _Field(lambda v: isinstance(v, Mapping), "a dict {limit name: number or None}"),
    "trials": _Field(lambda v: isinstance(v, (list, tuple)), "a list of dicts"),
    "front": _Field(lambda v: isinstance(v, (list, tuple)), "a list of trial ids (str)"),
    "hypervolume": _SECONDS,
    "reference": _Field(
        lambda v: isinstance(v, (list, tuple)) and all(is_real(x) and math.isfinite(x) for x in v),
        "a list of finite floats, one per objective",
    ),
}
_PARETO_OBJECTIVE_FIELDS: dict[str, _Field] = {
    "name": _STR,
    "direction": _Field(lambda v: isinstance(v, str) and v in _DIRECTIONS, f"one of {_DIRECTIONS}"),
}
_PARETO_TRIAL_FIELDS: dict[str, _Field] = {
    "trial_id": _STR,
    "status": _STR,
    "rejected": _BOOL,
    "reason": _OPT_STR,
    "feasible": _Field(lambda v: v is None or _is_bool(v), "a bool or None (not measured)"),
    "metrics": _DICT,
    "hyperparameters": _DICT,
}
_CONSTRAINT = _Field(
    lambda v: v is None or (is_real(v) and math.isfinite(v) and v >= 0),
    "a finite, non-negative number or None (no limit)",
)
_METRIC = _Field(lambda v: v is None or is_real(v), "a float or None (NaN allowed)")


# --- structure checks -------------------------------------------------------


def _check_record(record: Any, path: str, fields: Mapping[str, _Field]) -> None:
    if not isinstance(record, Mapping):
        raise ValueError(f"Received: {path}={describe(record)}; expected a dict.")
    for key, field in fields.items():
        if key not in record:
            raise ValueError(
                f"Received: {path} without {key!r}; expected keys {sorted(fields)} "
                "(extra keys are allowed)."
            )
        value = record[key]
        if not field.check(value):
            raise ValueError(
                f"Received: {key_path(path, key)}={describe(value)}; expected {field.expected}."
            )


def _check_optional(record: Mapping[str, Any], path: str, fields: Mapping[str, _Field]) -> None:
    """Check the value types of those ``fields`` that ``record`` has."""
    for key, field in fields.items():
        if key in record and not field.check(record[key]):
            raise ValueError(
                f"Received: {key_path(path, key)}={describe(record[key])}; "
                f"expected {field.expected} (optional key)."
            )


def _check_records(
    records: Any,
    path: str,
    fields: Mapping[str, _Field],
    optional: Mapping[str, _Field] | None = None,
) -> None:
    if not isinstance(records, (list, tuple)):
        raise ValueError(f"Received: {path}={describe(records)}; expected a list of dicts.")
    for index, record in enumerate(records):
        _check_record(record, key_path(path, index), fields)
        if optional:
            _check_optional(record, key_path(path, index), optional)


def check_models(models: Any, path: str = "models") -> None:
    """Check a list of exported-model records (the ``models`` part of a report).

    Args:
        models: The list to check.
        path: How the list is named in error messages.

    Raises:
        ValueError: If ``models`` is not a list of dicts with the model keys
            and value types, or if an optional export fidelity key
            (`MODEL_FIDELITY_FIELDS`) has a value of the wrong type.

    """
    _check_records(models, path, MODEL_FIELDS, MODEL_FIDELITY_FIELDS)


def check_export_failures(failures: Any, path: str = "export_failures") -> None:
    """Check a list of exports that failed verification (``export_failures`` of a report).

    Args:
        failures: The list to check.
        path: How the list is named in error messages.

    Raises:
        ValueError: If ``failures`` is not a list of dicts with ``name``,
            ``mode`` and ``reason`` (non-empty str), or if a figure
            (`EXPORT_FAILURE_FIGURES`) has a value of the wrong type.

    """
    _check_records(failures, path, EXPORT_FAILURE_FIELDS, EXPORT_FAILURE_FIGURES)


def _check_required(report: Any, path: str, keys: tuple[str, ...]) -> None:
    if not isinstance(report, Mapping):
        raise ValueError(f"Received: {path}={describe(report)}; expected a dict.")
    for key in keys:
        if key not in report:
            raise ValueError(
                f"Received: {path} without {key!r}; expected keys {sorted(keys)} "
                "(extra keys are allowed)."
            )


def _check_layer_map(mapping: Mapping[Any, Any], path: str, field: _Field) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ValueError(
                f"Received: a key {describe(key)} in {path}; expected layer names as str."
            )
        if not field.check(value):
            raise ValueError(
                f"Received: {key_path(path, key)}={describe(value)}; expected {field.expected}."
            )


def _check_stage(stage: Any, path: str) -> None:
    _check_record(stage, path, _STAGE_FIELDS)
    for key, field in _STAGE_LAYER_FIELDS.items():
        _check_layer_map(stage[key], key_path(path, key), field)


def check_stages(stages: Any, path: str = "stages") -> None:
    """Check a list of compression stage records (the ``stages`` of a compression report).

    Args:
        stages: The list to check.
        path: How the list is named in error messages.

    Raises:
        ValueError: If ``stages`` is not a list of dicts with the stage keys
            and value types, or if two stages share a name.

    """
    if not isinstance(stages, (list, tuple)):
        raise ValueError(f"Received: {path}={describe(stages)}; expected a list of dicts.")
    first_index: dict[str, int] = {}
    for index, stage in enumerate(stages):
        stage_path = key_path(path, index)
        _check_stage(stage, stage_path)
        name = stage["stage"]
        if name in first_index:
            raise ValueError(
                f"Received: {key_path(stage_path, 'stage')}={describe(name)}; expected a unique "
                f"stage name ({key_path(key_path(path, first_index[name]), 'stage')} has it "
                "already)."
            )
        first_index[name] = index


def _check_sensitivity(sensitivity: Any, path: str) -> None:
    if not isinstance(sensitivity, Mapping):
        raise ValueError(
            f"Received: {path}={describe(sensitivity)}; expected a dict "
            "{layer: {sparsity: accuracy drop}}."
        )
    for layer, drops in sensitivity.items():
        if not isinstance(layer, str):
            raise ValueError(
                f"Received: a key {describe(layer)} in {path}; expected layer names as str."
            )
        layer_path = key_path(path, layer)
        if not isinstance(drops, Mapping):
            raise ValueError(
                f"Received: {layer_path}={describe(drops)}; expected a dict "
                "{sparsity: accuracy drop}."
            )
        for sparsity, drop in drops.items():
            if not isinstance(sparsity, str):
                raise ValueError(
                    f"Received: a key {describe(sparsity)} in {layer_path}; expected sparsities "
                    "as str (JSON object keys), e.g. '0.5'."
                )
            if not _SENSITIVITY.check(drop):
                raise ValueError(
                    f"Received: {key_path(layer_path, sparsity)}={describe(drop)}; "
                    f"expected {_SENSITIVITY.expected}."
                )


def check_compression_structure(report: Any) -> None:
    """Check the keys and value types of a compression report.

    See `validate_compression_report` for the schema.

    Args:
        report: The compression report to check.

    Raises:
        ValueError: On the first missing key or bad value, naming its path.

    """
    _check_required(report, "report", _COMPRESSION_TOP_LEVEL)
    _check_record(report["model"], "report['model']", _COMPRESSION_MODEL_FIELDS)
    _check_record(report["dataset"], "report['dataset']", _DATASET_FIELDS)
    _check_record(report["budget"], "report['budget']", _BUDGET_FIELDS)
    check_stages(report["stages"], "report['stages']")
    chosen = report["chosen"]
    names = [stage["stage"] for stage in report["stages"]]
    if chosen is not None and (not isinstance(chosen, str) or chosen not in names):
        raise ValueError(
            f"Received: report['chosen']={describe(chosen)}; expected None (no stage within "
            f"budget) or one of the stage names {names}."
        )
    _check_environment(report["environment"], "report['environment']")
    if "sensitivity" in report:
        _check_sensitivity(report["sensitivity"], "report['sensitivity']")


def _check_compression_pointer(pointer: Any, path: str) -> None:
    _check_record(pointer, path, _POINTER_FIELDS)
    _check_record(pointer["budget"], key_path(path, "budget"), _BUDGET_FIELDS)
    if pointer["chosen"] is not None:
        _check_stage(pointer["chosen"], key_path(path, "chosen"))


def _check_environment(environment: Any, path: str) -> None:
    if not isinstance(environment, Mapping):
        raise ValueError(f"Received: {path}={describe(environment)}; expected a dict.")
    for key, value in environment.items():
        if not isinstance(key, str):
            raise ValueError(
                f"Received: a key {describe(key)} in {path}; expected package names as str."
            )
        if value is not None and not isinstance(value, str):
            raise ValueError(
                f"Received: {key_path(path, key)}={describe(value)}; expected a version str "
                "or None (not installed)."
            )


def _check_named_values(mapping: Mapping[Any, Any], path: str, what: str, field: _Field) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ValueError(f"Received: a key {describe(key)} in {path}; expected {what} as str.")
        if not field.check(value):
            raise ValueError(
                f"Received: {key_path(path, key)}={describe(value)}; expected {field.expected}."
            )


def _check_pareto_objectives(objectives: Any, path: str) -> list[str]:
    names: list[str] = []
    for index, objective in enumerate(objectives):
        objective_path = key_path(path, index)
        _check_record(objective, objective_path, _PARETO_OBJECTIVE_FIELDS)
        name = objective["name"]
        if name in names:
            raise ValueError(
                f"Received: {key_path(objective_path, 'name')}={describe(name)}; expected a "
                f"unique objective name ({key_path(key_path(path, names.index(name)), 'name')} "
                "has it already)."
            )
        names.append(name)
    return names


def _check_pareto_trials(trials: Any, path: str) -> dict[str, Mapping[str, Any]]:
    by_id: dict[str, Mapping[str, Any]] = {}
    first_index: dict[str, int] = {}
    for index, trial in enumerate(trials):
        trial_path = key_path(path, index)
        _check_record(trial, trial_path, _PARETO_TRIAL_FIELDS)
        _check_named_values(
            trial["metrics"], key_path(trial_path, "metrics"), "metric names", _METRIC
        )
        trial_id = trial["trial_id"]
        if trial_id in by_id:
            raise ValueError(
                f"Received: {key_path(trial_path, 'trial_id')}={describe(trial_id)}; expected a "
                f"unique trial id ({key_path(key_path(path, first_index[trial_id]), 'trial_id')} "
                "has it already)."
            )
        by_id[trial_id] = trial
        first_index[trial_id] = index
    return by_id


def _check_pareto_front(
    front: Any, path: str, trials: Mapping[str, Mapping[str, Any]], trials_path: str
) -> None:
    seen: set[str] = set()
    for index, trial_id in enumerate(front):
        id_path = key_path(path, index)
        if not isinstance(trial_id, str) or trial_id not in trials:
            raise ValueError(
                f"Received: {id_path}={describe(trial_id)}; expected the trial_id of a trial "
                f"in {trials_path}."
            )
        if trial_id in seen:
            raise ValueError(
                f"Received: {id_path}={describe(trial_id)}; expected each front trial id once."
            )
        seen.add(trial_id)
        trial = trials[trial_id]
        completed = str(trial["status"]).upper() == COMPLETED
        if not completed or trial["feasible"] is not True or trial["rejected"]:
            raise ValueError(
                f"Received: {id_path}={trial_id!r}, a trial with status={trial['status']!r}, "
                f"feasible={trial['feasible']!r} and rejected={bool(trial['rejected'])!r}; "
                f"expected the id of a {COMPLETED}, feasible, not rejected trial (only those "
                "can be on the front)."
            )


def check_pareto(pareto: Any, path: str = "pareto") -> None:
    """Check the result of a multi-objective search (the ``pareto`` part of a report).

    See `validate_report` for the schema.

    Args:
        pareto: The section to check.
        path: How the section is named in error messages.

    Raises:
        ValueError: On the first missing key or bad value, naming its path;
            also if objective names or trial ids repeat, if a front id names
            no trial or a trial that is not completed and feasible, or if
            ``reference`` does not hold one value per objective.

    """
    _check_record(pareto, path, _PARETO_FIELDS)
    names = _check_pareto_objectives(pareto["objectives"], key_path(path, "objectives"))
    _check_named_values(
        pareto["constraints"], key_path(path, "constraints"), "limit names", _CONSTRAINT
    )
    trials_path = key_path(path, "trials")
    trials = _check_pareto_trials(pareto["trials"], trials_path)
    _check_pareto_front(pareto["front"], key_path(path, "front"), trials, trials_path)
    reference = pareto["reference"]
    if len(reference) != len(names):
        raise ValueError(
            f"Received: {key_path(path, 'reference')}={describe(reference)} with "
            f"{len(reference)} value(s); expected one value per objective ({len(names)}: "
            f"{names})."
        )


def check_structure(report: Any) -> None:
    """Check the keys and value types of a report (see `validate_report`).

    Args:
        report: The report to check.

    Raises:
        ValueError: On the first missing key or bad value, naming its path.

    """
    _check_required(report, "report", _TOP_LEVEL)
    _check_record(report["dataset"], "report['dataset']", _DATASET_FIELDS)
    _check_record(report["search"], "report['search']", _SEARCH_FIELDS)
    if "direction" in report["search"] and report["search"]["direction"] not in _DIRECTIONS:
        raise ValueError(
            f"Received: report['search']['direction']={describe(report['search']['direction'])}; "
            f"expected one of {_DIRECTIONS} (optional; guessed from the objective if absent)."
        )
    _check_records(report["trials"], "report['trials']", _TRIAL_FIELDS)
    check_models(report["models"], "report['models']")
    _check_environment(report["environment"], "report['environment']")
    if "export_failures" in report:
        check_export_failures(report["export_failures"], "report['export_failures']")
    if "compression" in report:
        _check_compression_pointer(report["compression"], "report['compression']")
    if "pareto" in report:
        check_pareto(report["pareto"], "report['pareto']")
