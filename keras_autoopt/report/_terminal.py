"""The plain-text models table the command line prints at the end of a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keras_autoopt.report._format import fmt_kb, fmt_number, fmt_percent
from keras_autoopt.report._schema import check_models

_HEADER = ("name", "mode", "KB", "gzip KB", "accuracy %", "latency µs")
_RIGHT = (False, False, True, True, True, True)


def format_models_table(models: Sequence[Mapping[str, Any]]) -> str:
    """Return the exported models as an aligned plain-text table for a terminal.

    Columns: name, mode, size in KB, gzip size in KB (1 KB = 1024 bytes),
    accuracy in percent and median latency in microseconds. Text columns are
    left-aligned, numbers right-aligned; missing numbers (NaN) show as ``n/a``.

    Args:
        models: The ``models`` part of a report: one dict per exported model
            (see `validate_report` for the keys).

    Returns:
        The table, one line per model after a header and a rule, without a
        trailing newline. An empty list gives the header and ``(no models)``.

    Raises:
        ValueError: If ``models`` is not a list of valid model records.

    """
    check_models(models)
    rows = [
        (
            str(model["name"]),
            str(model["mode"]),
            fmt_kb(model["size_bytes"]),
            fmt_kb(model["gzip_bytes"]),
            fmt_percent(model["accuracy"]),
            fmt_number(model["latency_us_median"], 1),
        )
        for model in models
    ]
    widths = [max(len(row[col]) for row in [_HEADER, *rows]) for col in range(len(_HEADER))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, _RIGHT, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line(_HEADER), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in rows] if rows else ["(no models)"]
    return "\n".join(lines)
