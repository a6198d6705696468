"""Export for a device target: the target decides the mode allowed, the batch, the IO types, C."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from keras_autoopt._backend import keras
from keras_autoopt.export._c_source import _check_identifier, write_c_source
from keras_autoopt.export._tflite import ExportResult, export_tflite
from keras_autoopt.targets import Target, get_target

__all__ = ["export_for_target"]

# `export_tflite` arguments that the target sets.
_SET_BY_TARGET = {"batch_size": "fixed_batch", "int8_io": "int8_io"}


def export_for_target(
    model: keras.Model,
    path: str | os.PathLike,
    target: str | Target | Mapping[str, Any],
    mode: str | None = None,
    *,
    c_name: str = "model_data",
    **export_kwargs: Any,
) -> ExportResult:
    """Export ``model`` to ``.tflite`` for ``target``, verified as `export_tflite` verifies.

    The target is read (`get_target`) and ``mode`` checked against its
    ``quantizations`` before anything is converted, so a mode the device
    cannot run (a hybrid model for TFLite Micro) fails at once and writes
    nothing. Then the model is exported with a batch of 1 when the target has
    ``fixed_batch``, int8 input and output tensors as its ``int8_io`` says,
    and, for a ``c_source`` target, the C array written beside the file
    (``<c_name>.h`` and ``<c_name>.cc``, see `write_c_source`).

    The budgets (``flash_bytes``, ``ram_bytes``) are not checked here: they
    are constraints of the search and of the measurement.

    Args:
        model: A ``tf_keras`` model with a known input shape.
        path: Destination ``.tflite`` file.
        target: A built-in target's name (`TARGETS`), a mapping that
            `get_target` reads, or a `Target`.
        mode: One of the target's ``quantizations``; None picks its smallest
            (`Target.default_mode`: ``"int8"`` when allowed).
        c_name: The C array's name and the C files' stem, a C identifier;
            used by ``c_source`` targets.
        **export_kwargs: Passed to `export_tflite` (``representative_data``,
            ``verify_data``, ``verify_labels``, ``verify``, limits), except
            ``batch_size`` and ``int8_io``, which the target sets.

    Returns:
        The `ExportResult`, with ``batch_size`` and, for a ``c_source``
        target, ``c_files`` (the header and the source).

    Raises:
        ValueError: For an unknown target or an invalid target field, a
            mode the target does not run, ``batch_size`` or ``int8_io`` in
            ``export_kwargs``, a ``c_name`` that is not a C identifier, or as
            `export_tflite`; all before any conversion.
        ExportVerificationError: As `export_tflite` (nothing is written).
    """
    target = get_target(target)
    mode = target.default_mode if mode is None else target.check_mode(mode)
    for argument, field in _SET_BY_TARGET.items():
        if argument in export_kwargs:
            raise ValueError(
                f"Received: {argument}={export_kwargs[argument]!r} for target {target.name!r}; "
                f"expected no {argument}: the target sets it (change the target's {field!r}, "
                f"e.g. target.replace({field}=...)).")
    if target.c_source:
        _check_identifier(c_name)
    result = export_tflite(
        model, path, mode,
        batch_size=1 if target.fixed_batch else None,
        int8_io=target.int8_io,
        **export_kwargs,
    )
    if not target.c_source:
        return result
    c_files = write_c_source(result.path, result.path.parent, name=c_name)
    return dataclasses.replace(result, c_files=c_files)
