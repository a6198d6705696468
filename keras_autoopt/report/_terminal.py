"""The plain-text tables the command line prints: exported models and compression stages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keras_autoopt.report._format import fmt_kb, fmt_number, fmt_percent, fmt_ratio
from keras_autoopt.report._schema import check_models, check_stages

_HEADER = ("name", "mode", "KB", "gzip KB", "accuracy %", "latency µs")
_RIGHT = (False, False, True, True, True, True)
_STAGE_HEADER = (
    "stage",
    "mode",
    "sparsity %",
    "accuracy %",
    "gzip KB",
    "gzip ratio",
    "latency µs",
    "within budget",
)
_STAGE_RIGHT = (False, False, True, True, True, True, True, False)


def _aligned_table(
    header: Sequence[str], right: Sequence[bool], rows: Sequence[Sequence[str]], empty: str
) -> str:
    """Return ``rows`` under ``header`` and a rule, columns padded to the same width."""
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if is_right else cell.ljust(width)
            for cell, width, is_right in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line(header), "  ".join("-" * width for width in widths)]
    lines += [line(row) for row in rows] if rows else [empty]
    return "\n".join(lines)


def format_models_table(models: Sequence[Mapping[str, Any]]) -> str:
    """Return the exported models as an aligned plain-text table for a terminal.

    Columns: name, mode, size in KB, gzip size in KB (1 KB = 1024 bytes),
    accuracy in percent and median latency in microseconds; when models were
    measured for a device target (``device``), also its flash and RAM in KB and
    whether the model runs there. Text columns are
    left-aligned, numbers right-aligned; missing numbers (NaN) show as ``n/a``.

    Args:
        models: The ``models`` part of a report: one dict per exported model
            (`ExportedModel` records as dicts).

    Returns:
        The table, one line per model after a header and a rule, without a
        trailing newline. An empty list gives the header and ``(no models)``.

    Raises:
        ValueError: If ``models`` is not a list of valid model records.

    """
    check_models(models)
    devices = [model.get("device") or {} for model in models]
    target = next((device["target"] for device in devices if device.get("target")), None)
    rows = []
    for model, device in zip(models, devices, strict=True):
        row = [
            str(model["name"]),
            str(model["mode"]),
            fmt_kb(model["size_bytes"]),
            fmt_kb(model["gzip_bytes"]),
            fmt_percent(model["accuracy"]),
            fmt_number(model["latency_us_median"], 1),
        ]
        if target is not None:
            ram = device.get("ram_bytes")
            row += [fmt_kb(device["flash_bytes"]) if device else "n/a",
                    fmt_kb(ram) if ram is not None else "n/a",
                    ("yes" if device.get("reason") is None else "no") if device else "n/a"]
        rows.append(tuple(row))
    if target is None:
        return _aligned_table(_HEADER, _RIGHT, rows, "(no models)")
    header = (*_HEADER, "flash KB", "RAM KB", f"runs on {target}")
    return _aligned_table(header, (*_RIGHT, True, True, False), rows, "(no models)")


def format_stages_table(stages: Sequence[Mapping[str, Any]]) -> str:
    """Return the compression stages as an aligned plain-text table for a terminal.

    Columns: stage, mode, sparsity in percent, accuracy in percent, gzip size
    in KB (1 KB = 1024 bytes), gzip ratio (float32 size over the stage's gzip
    size, e.g. ``35.2×``), median latency in microseconds and whether the
    stage is within the accuracy budget (``yes``/``no``, plain words so that
    any console encoding can print them). Missing numbers (NaN) show as ``n/a``.

    Args:
        stages: The ``stages`` part of a compression report: one dict per
            stage (`CompressionStage` records as dicts).

    Returns:
        The table, one line per stage after a header and a rule, without a
        trailing newline. An empty list gives the header and ``(no stages)``.

    Raises:
        ValueError: If ``stages`` is not a list of valid stage records with
            unique names.

    """
    check_stages(stages)
    rows = [
        (
            str(stage["stage"]),
            str(stage["mode"]),
            fmt_percent(stage["sparsity"], 1),
            fmt_percent(stage["accuracy"]),
            fmt_kb(stage["gzip_bytes"]),
            fmt_ratio(stage["gzip_ratio"]),
            fmt_number(stage["latency_us_median"], 1),
            "yes" if stage["within_budget"] else "no",
        )
        for stage in stages
    ]
    return _aligned_table(_STAGE_HEADER, _STAGE_RIGHT, rows, "(no stages)")
