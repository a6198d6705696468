"""Validation of the plain-dict run report, with errors that name the key path.

The report is built by the pipeline and read by humans (``report.md``) and by
programs (``report.json``). Every check here names where the bad value sits
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
_DIRECTIONS = ("max", "min")
_TOP_LEVEL = ("dataset", "search", "trials", "models", "environment")


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


def _check_records(records: Any, path: str, fields: Mapping[str, _Field]) -> None:
    if not isinstance(records, (list, tuple)):
        raise ValueError(f"Received: {path}={describe(records)}; expected a list of dicts.")
    for index, record in enumerate(records):
        _check_record(record, key_path(path, index), fields)


def check_models(models: Any, path: str = "models") -> None:
    """Check a list of exported-model records (the ``models`` part of a report).

    Args:
        models: The list to check.
        path: How the list is named in error messages.

    Raises:
        ValueError: If ``models`` is not a list of dicts with the model keys
            and value types.

    """
    _check_records(models, path, MODEL_FIELDS)


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


def check_structure(report: Any) -> None:
    """Check the keys and value types of a report (see `validate_report`).

    Args:
        report: The report to check.

    Raises:
        ValueError: On the first missing key or bad value, naming its path.

    """
    if not isinstance(report, Mapping):
        raise ValueError(f"Received: report={describe(report)}; expected a dict.")
    for key in _TOP_LEVEL:
        if key not in report:
            raise ValueError(
                f"Received: report without {key!r}; expected keys {sorted(_TOP_LEVEL)} "
                "(extra keys are allowed)."
            )
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
