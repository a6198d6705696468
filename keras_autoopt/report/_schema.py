"""Validation of the report dicts against the typed records, with errors that name the key path.

The schema is the records in `keras_autoopt.report._records` (`RunReport` and
its parts) and `keras_autoopt.report._records_compression` (`CompressionReport`
and its parts). This module validates a dict with them
and turns pydantic's first error into one message that names where the bad
value sits (``report['models'][1]['gzip_bytes']``), the value received and
what was expected, so that a bug in the code that built the report is found
at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from keras_autoopt.report._records import Models, RunReport
from keras_autoopt.report._records_compression import CompressionReport, Stages
from keras_autoopt.report._values import describe, key_path

_MODELS = TypeAdapter(Models)
_STAGES = TypeAdapter(Stages)


def error_message(error: Any, root: str) -> str:
    """Return the message of one pydantic error (an item of ``ValidationError.errors()``).

    Args:
        error: The error dict: ``type``, ``loc``, ``msg``, ``input`` and ``ctx``.
        root: How the validated value is named, e.g. ``"report"``.

    Returns:
        For example ``"Received: report['models'][1]['gzip_bytes']='12' (str); expected a
        non-negative int."``.

    """
    path = root
    for key in error["loc"]:
        path = key_path(path, key)
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "report_invariant":
        return ctx["render"](path)
    if kind == "report_missing":
        return (
            f"Received: {path} without {ctx['key']!r}; expected keys {ctx['keys']} "
            "(extra keys are allowed)."
        )
    if kind == "report_key":
        return f"Received: a key {describe(ctx['key'])} in {path}; expected {ctx['expected']}."
    expected = ctx["expected"] if kind == "report_value" else error["msg"]
    return f"Received: {path}={describe(error['input'])}; expected {expected}."


def validate(schema: Any, value: Any, root: str) -> Any:
    """Validate ``value`` with a record class or a `TypeAdapter`, raising one clear message.

    Args:
        schema: A record class (``RunReport``) or a ``TypeAdapter``.
        value: The value to check.
        root: How ``value`` is named in error messages.

    Returns:
        The validated record (or list of records).

    Raises:
        ValueError: On the first problem, naming its key path (see `error_message`).

    """
    check = schema.validate_python if isinstance(schema, TypeAdapter) else schema.model_validate
    try:
        return check(value)
    except ValidationError as error:
        raise ValueError(error_message(error.errors()[0], root)) from None


def check_structure(report: Any) -> RunReport:
    """Check a run report against `RunReport`; return the record."""
    return validate(RunReport, report, "report")


def check_compression_structure(report: Any) -> CompressionReport:
    """Check a compression report against `CompressionReport`; return the record."""
    return validate(CompressionReport, report, "report")


def check_models(models: Any, path: str = "models") -> None:
    """Check a list of exported-model records (`ExportedModel`), named ``path`` in errors."""
    validate(_MODELS, models, path)


def check_stages(stages: Any, path: str = "stages") -> None:
    """Check a list of compression stages (`CompressionStage`, unique names), named ``path``."""
    validate(_STAGES, stages, path)
