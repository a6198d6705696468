"""Conversion of a report to strict JSON: NumPy scalars unwrapped, NaN/inf as null."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from keras_autoopt.report._values import describe, key_path

_EXPECTED = (
    "JSON-compatible values (dict with str keys, list, tuple, str, int, float, bool, None, "
    "NumPy scalars or arrays, paths)"
)


def to_jsonable(value: Any, path: str = "report") -> Any:
    """Return a copy of ``value`` made only of JSON types, with NaN/inf as ``None``.

    NumPy scalars become Python numbers, NumPy arrays and tuples become lists,
    paths become str. Non-finite floats become ``None`` because NaN and
    infinities are not valid JSON.

    Args:
        value: The value to convert.
        path: How ``value`` is named in error messages.

    Returns:
        The converted value.

    Raises:
        ValueError: If a value (or a dict key) has no JSON equivalent; the
            message names its path.

    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"Received: a key {describe(key)} in {path}; expected str keys "
                    "(JSON objects have text keys only)."
                )
            result[key] = to_jsonable(item, key_path(path, key))
        return result
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, key_path(path, index)) for index, item in enumerate(value)]
    raise ValueError(f"Received: {path}={describe(value)}; expected {_EXPECTED}.")


def dumps(report: Mapping[str, Any]) -> str:
    """Return ``report`` as indented, strict JSON text ending with a newline.

    Args:
        report: The report (already validated).

    Returns:
        The JSON text; it never contains ``NaN`` or ``Infinity``.

    Raises:
        ValueError: If a value has no JSON equivalent (see `to_jsonable`).

    """
    return json.dumps(to_jsonable(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
