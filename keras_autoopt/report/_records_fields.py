"""The value types of the report records and their base class.

Each type is a plain Python type (``int``, ``float``, ``str``, ...) with a
check that raises a `PydanticCustomError` naming what was expected in the
words of the report's error messages (``a non-negative int``); the check also
accepts NumPy scalars and turns them into Python values. ``report._schema`` turns
those errors into messages that name the key path and the value
received. Checks that span several values (unique names, a front of feasible
trials) raise errors with a ``render`` function that writes the whole message
from the path where the error sits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import PureWindowsPath
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from keras_autoopt._defaults import EXPORT_MODES
from keras_autoopt.report._values import describe, is_int, is_real

#: A TFLite conversion mode: one of `keras_autoopt._defaults.EXPORT_MODES`.
ExportModeName = Literal[EXPORT_MODES]  # type: ignore[valid-type]
#: keras-tuner's trial statuses (``TrialStatus``); the records take them in any case.
TrialStatusName = Literal["RUNNING", "IDLE", "INVALID", "STOPPED", "COMPLETED", "FAILED"]
#: Whether an objective is maximized or minimized.
DirectionName = Literal["max", "min"]


def value_error(expected: str) -> PydanticCustomError:
    """The error of a value that is not ``expected`` (e.g. ``"a non-negative int"``)."""
    return PydanticCustomError("report_value", "expected {expected}", {"expected": expected})


def invariant_error(render: Callable[[str], str]) -> PydanticCustomError:
    """The error of a check across values: ``render(path of the record)`` is its message."""
    return PydanticCustomError(
        "report_invariant", "{message}", {"message": render("<record>"), "render": render}
    )


def check_unique(values: list[Any], item_path: Callable[[str, int], str], what: str) -> None:
    """Raise an `invariant_error` at the second occurrence of a value in ``values``.

    Args:
        values: The values that must be unique.
        item_path: ``item_path(path of the record, index)`` is the key path of the
            ``index``-th value, e.g. ``<record>['stages'][2]['stage']``.
        what: What a value is, e.g. ``"stage name"``.
    """
    first_index: dict[Any, int] = {}
    for index, value in enumerate(values):
        if value in first_index:
            first = first_index[value]
            raise invariant_error(
                lambda path, index=index, value=value, first=first: (
                    f"Received: {item_path(path, index)}={describe(value)}; expected a unique "
                    f"{what} ({item_path(path, first)} has it already)."
                )
            )
        first_index[value] = index


def plain(value: Any) -> Any:
    """Return ``value`` with NumPy scalars and arrays as Python values, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def checked(
    kind: Any, check: Callable[[Any], bool], expected: str, convert: Callable[[Any], Any] | None
) -> Any:
    """``kind`` whose values must pass ``check`` (else: expected ``expected``), then ``convert``."""

    def validate(value: Any) -> Any:
        if not check(value):
            raise value_error(expected)
        return value if convert is None or value is None else convert(value)

    return Annotated[kind, BeforeValidator(validate)]


def one_of(kind: Any, expected_suffix: str = "", any_case: bool = False) -> Any:
    """A ``Literal`` type whose error lists its values: ``one of ('max', 'min')``.

    With ``any_case``, a value is matched whatever its case and held upper-cased.
    """
    values = get_args(kind)

    def normal(value: Any) -> Any:
        return value.upper() if any_case and isinstance(value, str) else value

    return checked(
        kind,
        lambda v: isinstance(v, str) and normal(v) in values,
        f"one of {values}{' (any case)' if any_case else ''}{expected_suffix}",
        normal,
    )


def named_map(value_kind: Any, keys: str, expected: str = "a dict") -> Any:
    """A ``dict[str, value_kind]``; a non-str key is reported as ``expected {keys}``."""

    def validate(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise value_error(expected)
        for key in value:
            if not isinstance(key, str):
                raise PydanticCustomError(
                    "report_key",
                    "a key {key!r}: expected {expected}",
                    {"key": key, "expected": keys},
                )
        return dict(value)

    return Annotated[dict[str, value_kind], BeforeValidator(validate)]


def list_of(item_kind: Any, expected: str = "a list of dicts", non_empty: bool = False) -> Any:
    """A ``list[item_kind]``; tuples are accepted."""
    return checked(
        list[item_kind],
        lambda v: isinstance(v, (list, tuple)) and (len(v) > 0 or not non_empty),
        expected,
        list,
    )


def not_none(kind: Any, expected: str) -> Any:
    """An optional key whose value, when the key is present, must not be None."""
    return checked(kind | None, lambda v: v is not None, expected, None)


def _nonneg_int(value: Any) -> bool:
    return is_int(value) and value >= 0


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


def _or_none(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


_FRACTION_TEXT = "a float in [0, 1] (a fraction, not a percentage)"
_OPTIONAL = " (optional key)"

NonEmptyStr = checked(str, lambda v: isinstance(v, str) and v != "", "a non-empty str", None)
OptStr = checked(str | None, _or_none(lambda v: isinstance(v, str)), "a str or None", None)
Count = checked(int, _nonneg_int, "a non-negative int", int)
OptCount = checked(int | None, _or_none(_nonneg_int), "a non-negative int or None", int)
OptReal = checked(float | None, _or_none(is_real), "a float or None (NaN allowed)", float)
Seconds = checked(
    float, lambda v: is_real(v) and math.isfinite(v) and v >= 0, "a finite, non-negative float",
    float,
)
Latency = checked(float, _nonneg_or_nan, "a non-negative float (NaN when not measured)", float)
Fraction = checked(float, _fraction_or_nan, f"{_FRACTION_TEXT} or NaN", float)
StrictFraction = checked(float, _fraction, _FRACTION_TEXT, float)
Ratio = checked(float, _nonneg_or_nan, "a non-negative float (NaN when not available)", float)
Flag = checked(bool, _is_bool, "a bool", bool)
OptFlag = checked(bool | None, _or_none(_is_bool), "a bool or None (not measured)", bool)
RelPath = checked(str, _relative_path, "a non-empty path relative to the report folder", None)
#: A free-form dict with str keys (hyperparameters, the run config): any JSON values.
FreeDict = Annotated[
    named_map(Any, "str keys (JSON objects have text keys only)"), BeforeValidator(plain)
]
#: {package name: version or None (not installed)}.
Environment = named_map(
    checked(str | None, _or_none(lambda v: isinstance(v, str)),
            "a version str or None (not installed)", None),
    "package names as str",
)

# Optional keys: the figures of an export's check against its Keras model.
OptKeyCount = checked(int | None, _or_none(_nonneg_int), "a non-negative int or None" + _OPTIONAL,
                      int)
OptKeyFraction = checked(
    float | None, _or_none(_fraction_or_nan), f"{_FRACTION_TEXT}, NaN or None{_OPTIONAL}", float
)
OptKeyLimitFraction = checked(
    float | None, _or_none(_fraction), f"{_FRACTION_TEXT} or None{_OPTIONAL}", float
)
OptKeySeconds = checked(
    float | None,
    _or_none(lambda v: is_real(v) and math.isfinite(v) and v >= 0),
    f"a finite, non-negative float (seconds) or None (not known){_OPTIONAL}",
    float,
)


def _confusion_matrix(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        return False
    return all(
        isinstance(row, (list, tuple, np.ndarray))
        and len(row) == len(value)
        and all(_nonneg_int(count) for count in row)
        for row in value
    )


#: Optional key: a confusion matrix, ``[true class][predicted class]`` -> sample count.
OptKeyConfusion = checked(
    list[list[int]] | None,
    _confusion_matrix,
    "a square, non-empty list of lists of non-negative ints (rows: true class, columns: "
    f"predicted class) or None{_OPTIONAL}",
    lambda v: [[int(count) for count in row] for row in v],
)
OptKeyDiff = checked(
    float | None,
    _or_none(lambda v: is_real(v) and (math.isnan(v) or v >= 0)),
    f"a non-negative float (inf allowed), NaN or None{_OPTIONAL}",
    float,
)


class Record(BaseModel):
    """Base of the report records: a dict with these keys, extra keys allowed and kept.

    Validation takes a mapping (NumPy scalars accepted); a missing key is
    reported with the sorted list of required keys. ``model_dump()`` leaves
    out the optional keys the record was built without, so a report dumps
    back to the dict it was validated from (``mode="json"``: as ``report.json``).
    """

    model_config = ConfigDict(extra="allow", validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        if isinstance(data, BaseModel):
            return data
        if not isinstance(data, Mapping):
            raise value_error("a dict")
        keys = [name for name, field in cls.model_fields.items() if field.is_required()]
        for key in keys:
            if key not in data:
                raise PydanticCustomError(
                    "report_missing",
                    "missing key {key!r}; expected keys {keys}",
                    {"key": key, "keys": sorted(keys)},
                )
        return {
            key: value if key in cls.model_fields else plain(value) for key, value in data.items()
        }

    @model_serializer(mode="wrap")
    def _drop_unset_optional_keys(self, handler: Any) -> Any:
        data = handler(self)
        for name, field in type(self).model_fields.items():
            if not field.is_required() and name not in self.model_fields_set:
                data.pop(name, None)
        return data
