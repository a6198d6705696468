"""Argument checks shared by the package.

Each check raises a ``ValueError`` that names the argument, the value
received and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= ``minimum``, else raise.

    Args:
        name: Argument name used in the message.
        value: The value received.
        minimum: The smallest value accepted.

    Returns:
        The value as a Python ``int``.

    Raises:
        ValueError: If ``value`` is not an integer (bools are rejected; NumPy
            integers are accepted) or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"Received: {name}={value!r}; expected {expected}.")
    return int(value)


def check_int_choices(name: str, value: Any) -> tuple[int, ...]:
    """Return ``value`` as a non-empty tuple of unique positive integers.

    Args:
        name: Argument name used in the message.
        value: The value received.

    Returns:
        The choices as a tuple.

    Raises:
        ValueError: If a choice is not a positive integer, or as `check_choices`.
    """
    choices = check_choices(name, value, kind=int)
    for choice in choices:
        check_positive_int(name, choice)
    return choices


def _is_pair(value: Any, kind: type | tuple[type, ...]) -> bool:
    """Whether ``value`` is a sequence (not a string) of two ``kind`` values, bools excluded."""
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
    )


def check_int_range(name: str, value: Any, *, minimum: int = 0) -> tuple[int, int]:
    """Return a ``(low, high)`` pair of ints with ``minimum <= low <= high``.

    Args:
        name: Argument name used in the message.
        value: The value received.
        minimum: Smallest allowed ``low``.

    Returns:
        The pair as a tuple.

    Raises:
        ValueError: If the value is not such a pair.

    """
    ok = _is_pair(value, int) and minimum <= value[0] <= value[1]
    if not ok:
        raise ValueError(
            f"Received: {name}={value!r}; expected a pair (low, high) of integers "
            f"with {minimum} <= low <= high."
        )
    return int(value[0]), int(value[1])


def check_float_range(
    name: str, value: Any, *, low: float, high: float, open_low: bool = False
) -> tuple[float, float]:
    """Return a ``(a, b)`` pair of floats inside ``[low, high]`` with ``a <= b``.

    Args:
        name: Argument name used in the message.
        value: The value received.
        low: Smallest allowed bound.
        high: Largest allowed bound.
        open_low: Whether ``low`` itself is excluded.

    Returns:
        The pair as a tuple of floats.

    Raises:
        ValueError: If the value is not such a pair.

    """
    ok = _is_pair(value, (int, float)) and all(math.isfinite(v) for v in value)
    if ok:
        a, b = float(value[0]), float(value[1])
        ok = (a > low if open_low else a >= low) and a <= b <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(
            f"Received: {name}={value!r}; expected a pair (low, high) of floats "
            f"with low <= high inside {bracket}{low}, {high}]."
        )
    return float(value[0]), float(value[1])


def check_choices(name: str, value: Any, *, allowed: Sequence[Any] | None = None,
                  kind: type | tuple[type, ...] | None = None) -> tuple:
    """Return ``value`` as a non-empty tuple of unique allowed choices.

    Args:
        name: Argument name used in the message.
        value: The value received.
        allowed: If given, every choice must be one of these.
        kind: If given, every choice must be an instance of this type.

    Returns:
        The choices as a tuple.

    Raises:
        ValueError: If the value is empty, has duplicates, or holds a choice
            that is not allowed.

    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"Received: {name}={value!r}; expected a non-empty list of choices.")
    if len(set(value)) != len(value):
        raise ValueError(f"Received: {name}={value!r}; expected choices without duplicates.")
    for choice in value:
        if kind is not None and (not isinstance(choice, kind) or isinstance(choice, bool)
                                 and kind is not bool):
            raise ValueError(
                f"Received: {name}={value!r}; expected every choice to be of type "
                f"{getattr(kind, '__name__', kind)}, got {choice!r}."
            )
        if allowed is not None and choice not in allowed:
            raise ValueError(
                f"Received: {name}={value!r}; expected choices among {tuple(allowed)!r}, "
                f"got {choice!r}."
            )
    return tuple(value)


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a ``float`` if it is a finite number > 0, else raise.

    Args:
        name: Argument name used in the message.
        value: The value received.

    Returns:
        The value as a Python ``float``.

    Raises:
        ValueError: If ``value`` is not a real number (bools are rejected), is
            not finite, or is not positive.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Received: {name}={value!r}; expected a positive number.")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Check that ``value`` is True or False (not 1, not "yes").

    Raises:
        ValueError: Naming ``name`` and the value received.
    """
    if not isinstance(value, bool):
        raise ValueError(f"Received: {name}={value!r}; expected True or False.")
    return value
