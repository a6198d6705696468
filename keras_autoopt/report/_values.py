"""Small value helpers shared by the report modules: error-message text and number tests."""

from __future__ import annotations

import math
import numbers
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
