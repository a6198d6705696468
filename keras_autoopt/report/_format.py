"""Number and text formatting shared by the Markdown reports and the terminal tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keras_autoopt.report._values import is_int, is_missing_number, is_real

NOT_AVAILABLE = "n/a"
_SHORT_HYPERPARAMETERS = 60


def fmt_number(value: Any, digits: int) -> str:
    """Format a float with ``digits`` decimals; ``None`` and NaN/inf become ``n/a``.

    Args:
        value: A real number or ``None``.
        digits: Decimals to show.

    Returns:
        For example ``"0.9920"``, or ``"n/a"``.

    """
    if is_missing_number(value):
        return NOT_AVAILABLE
    return f"{float(value):.{digits}f}"


def fmt_int(value: Any) -> str:
    """Format an integer with thousands separators; ``None`` becomes ``n/a``.

    Args:
        value: An int or ``None``.

    Returns:
        For example ``"76,522"``, or ``"n/a"``.

    """
    if value is None:
        return NOT_AVAILABLE
    return f"{int(value):,}"


def fmt_percent(fraction: Any, digits: int = 2) -> str:
    """Format a fraction in [0, 1] as a percentage without the sign.

    Args:
        fraction: A fraction, ``None`` or NaN.
        digits: Decimals to show.

    Returns:
        For example ``"99.20"`` for 0.992, or ``"n/a"``.

    """
    if is_missing_number(fraction):
        return NOT_AVAILABLE
    return f"{100.0 * float(fraction):.{digits}f}"


def fmt_points(delta: Any, digits: int = 2) -> str:
    """Format a difference of two fractions in percentage points, always signed.

    Args:
        delta: A difference of fractions (``0.984 - 0.992``), ``None`` or NaN.
        digits: Decimals to show.

    Returns:
        For example ``"-0.80"`` or ``"+0.10"``, or ``"n/a"``.

    """
    if is_missing_number(delta):
        return NOT_AVAILABLE
    return f"{100.0 * float(delta):+.{digits}f}"


def fmt_ratio(ratio: Any) -> str:
    """Format a size ratio (how many times smaller) with one decimal and ``×``.

    Args:
        ratio: A non-negative number, ``None`` or NaN.

    Returns:
        For example ``"35.2×"``, or ``"n/a"``.

    """
    if is_missing_number(ratio):
        return NOT_AVAILABLE
    return f"{float(ratio):,.1f}×"


def fmt_kb(n_bytes: Any) -> str:
    """Format a byte count in KB (1 KB = 1024 bytes) with one decimal.

    Args:
        n_bytes: A number of bytes.

    Returns:
        For example ``"302.0"`` for 309,240 bytes.

    """
    return f"{int(n_bytes) / 1024:,.1f}"


def fmt_duration(seconds: Any) -> str:
    """Format a duration in seconds, with hours and minutes when it is long.

    Args:
        seconds: A finite, non-negative number of seconds.

    Returns:
        For example ``"42.5 s"`` or ``"3723.0 s (1 h 02 min 03 s)"``.

    """
    seconds = float(seconds)
    text = f"{seconds:.1f} s"
    if seconds >= 60:
        whole = round(seconds)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        human = f"{minutes} min {secs:02d} s" if not hours else f"{hours} h {minutes:02d} min"
        if hours:
            human += f" {secs:02d} s"
        text += f" ({human})"
    return text


def fmt_value(value: Any) -> str:
    """Format a hyperparameter (or any report) value compactly.

    Args:
        value: Any JSON-like value.

    Returns:
        Floats with 4 significant digits, NaN as ``NaN``, containers as
        compact JSON, anything else through ``str``.

    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if is_int(value):
        return str(int(value))
    if is_real(value):
        number = float(value)
        if number != number:
            return "NaN"
        text = f"{number:.4g}"
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def fmt_hyperparameters(hyperparameters: Mapping[str, Any]) -> str:
    """Format hyperparameters as ``name=value, ...``, cut to a short line.

    Args:
        hyperparameters: Hyperparameter names and values.

    Returns:
        The text, ending with an ellipsis if it was cut; ``"-"`` if empty.

    """
    if not hyperparameters:
        return "-"
    text = ", ".join(f"{name}={fmt_value(value)}" for name, value in hyperparameters.items())
    if len(text) > _SHORT_HYPERPARAMETERS:
        text = text[: _SHORT_HYPERPARAMETERS - 1].rstrip(", ") + "…"
    return text
