"""The export fidelity parts of ``report.md``: how each export matched its Keras model.

Two sections, both shown only when the report has the data: "Export fidelity"
(the verification figures of the exported models) and "Exports that failed
verification" (``report["export_failures"]``), which goes at the top of the
report so that nobody misses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from keras_autoopt.report._format import NOT_AVAILABLE, fmt_int, fmt_percent, fmt_points
from keras_autoopt.report._md import md_table
from keras_autoopt.report._records import MODEL_FIDELITY_KEYS
from keras_autoopt.report._values import is_missing_number

FIDELITY_HEADING = "## Export fidelity"
FAILURES_HEADING = "## Exports that failed verification"


def _fmt_significant(value: Any) -> str:
    """Three significant digits; ``None`` and NaN are ``n/a``, infinity ``inf``."""
    if value is None or math.isnan(float(value)):
        return NOT_AVAILABLE
    if math.isinf(float(value)):
        return "inf"
    return f"{float(value):.3g}"


def _difference(tflite_accuracy: Any, keras_accuracy: Any) -> float | None:
    if is_missing_number(tflite_accuracy) or is_missing_number(keras_accuracy):
        return None
    return float(tflite_accuracy) - float(keras_accuracy)


def has_fidelity(model: Mapping[str, Any]) -> bool:
    """Return whether a model record carries any export fidelity figure.

    Args:
        model: A validated model record.

    Returns:
        True if it has one of the keys of `MODEL_FIDELITY_KEYS`.

    """
    return any(key in model for key in MODEL_FIDELITY_KEYS)


def fidelity_section(models: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the "Export fidelity" section, or nothing when no model has its figures.

    One row per model that has any of the optional fidelity keys
    (``verify_samples``, ``top1_agreement``, ``keras_accuracy``,
    ``tflite_accuracy``, ``max_abs_diff``); a missing figure reads ``n/a``.
    The difference column is TFLite accuracy minus Keras accuracy in
    percentage points (negative: the export lost accuracy).

    Args:
        models: The ``models`` part of a validated report.

    Returns:
        The section's lines, or an empty list.

    """
    checked = [model for model in models if has_fidelity(model)]
    if not checked:
        return []
    header = (
        "model",
        "samples",
        "top-1 agreement (%)",
        "Keras accuracy (%)",
        "TFLite accuracy (%)",
        "TFLite − Keras (pt)",
        "max abs diff",
    )
    rows = [
        (
            str(model["name"]),
            fmt_int(model.get("verify_samples")),
            fmt_percent(model.get("top1_agreement")),
            fmt_percent(model.get("keras_accuracy")),
            fmt_percent(model.get("tflite_accuracy")),
            fmt_points(_difference(model.get("tflite_accuracy"), model.get("keras_accuracy"))),
            _fmt_significant(model.get("max_abs_diff")),
        )
        for model in checked
    ]
    lines = [
        FIDELITY_HEADING,
        "",
        "Each export was run under LiteRT and compared with its Keras model on the "
        "verification samples before it was written: top-1 agreement is the share of samples "
        "whose predicted class is the same in both, and the accuracies are on those samples "
        "(not on the data of the accuracy column above).",
        "",
        *md_table(header, rows, "lrrrrrr"),
    ]
    left_out = len(models) - len(checked)
    if left_out:
        lines += ["", f"_{left_out} model(s) without verification figures are not listed._"]
    return lines


def _pair(value: str, limit: str) -> str:
    return f"{value} / {limit}"


def failures_section(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the "Exports that failed verification" section, or nothing if none failed.

    A table of the figures of each failed check (those missing read ``n/a``),
    then the full reason of each failure.

    Args:
        failures: The ``export_failures`` part of a validated report.

    Returns:
        The section's lines, or an empty list.

    """
    if not failures:
        return []
    header = (
        "export",
        "mode",
        "samples",
        "max abs diff / tolerance",
        "top-1 agreement / minimum (%)",
        "accuracy Keras → TFLite (%)",
        "drop / allowed (pt)",
    )
    rows = []
    for failure in failures:
        keras_accuracy = failure.get("keras_accuracy")
        tflite_accuracy = failure.get("tflite_accuracy")
        drop = _difference(keras_accuracy, tflite_accuracy)
        allowed = failure.get("max_accuracy_drop")
        rows.append(
            (
                str(failure["name"]),
                str(failure["mode"]),
                fmt_int(failure.get("verify_samples")),
                _pair(
                    _fmt_significant(failure.get("max_abs_diff")),
                    _fmt_significant(failure.get("tolerance")),
                ),
                _pair(
                    fmt_percent(failure.get("top1_agreement")),
                    fmt_percent(failure.get("min_top1_agreement")),
                ),
                f"{fmt_percent(keras_accuracy)} → {fmt_percent(tflite_accuracy)}",
                _pair(
                    NOT_AVAILABLE if drop is None else f"{100.0 * drop:.2f}",
                    NOT_AVAILABLE if allowed is None else f"{100.0 * float(allowed):.2f}",
                ),
            )
        )
    lines = [
        FAILURES_HEADING,
        "",
        f"**{len(failures)} export(s) failed verification against their Keras model and were not "
        "written.**",
        "",
        *md_table(header, rows, "llrrrrr"),
        "",
    ]
    for failure in failures:
        reason = " ".join(str(failure["reason"]).split())
        lines.append(f"- **{failure['name']}** ({failure['mode']}): {reason}")
    return lines
