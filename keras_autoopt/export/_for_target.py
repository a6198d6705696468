"""Export for a device target: the target decides the mode allowed, the batch, the IO types, C."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt._checks import check_positive_int
from keras_autoopt.export._arguments import _check_data, _input_spec
from keras_autoopt.export._c_source import _check_identifier, write_c_source
from keras_autoopt.export._converter import _convert
from keras_autoopt.export._sparse import _check_sparse
from keras_autoopt.export._tflite import ExportResult, export_tflite
from keras_autoopt.load import as_tf_keras
from keras_autoopt.targets import Target, get_target

__all__ = ["convert_for_target", "export_for_target"]

# `export_tflite` arguments that the target sets.
_SET_BY_TARGET = {"batch_size": "fixed_batch", "int8_io": "int8_io"}

# Runtimes that cannot read sparse tensors, and why.
_NO_SPARSE = {
    "tflm": "TFLite Micro has no sparse kernels",
    "vela": "Vela (Arm Ethos-U) does not compile sparse tensors",
}


def export_for_target(
    model: keras.Model,
    path: str | os.PathLike,
    target: str | Target | Mapping[str, Any],
    mode: str | None = None,
    *,
    c_name: str = "model_data",
    sparse: bool | str | None = None,
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

    Pruned weights get TFLite's sparse encoding where the runtime reads it:
    ``sparse=None`` (the default) stands for ``"auto"`` on LiteRT and
    XNNPACK targets (the sparse file kept only if smaller or faster, see
    `export_tflite`) and for False on TFLite Micro and Vela targets, which
    have no sparse tensors and refuse ``sparse=True``.

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
        sparse: None (the target's default), False, True or ``"auto"``, as
            `export_tflite`'s; ``"auto"`` is False on TFLite Micro and Vela.
        **export_kwargs: Passed to `export_tflite` (``representative_data``,
            ``verify_data``, ``verify_labels``, ``verify``, limits), except
            ``batch_size`` and ``int8_io``, which the target sets.

    Returns:
        The `ExportResult`, with ``batch_size`` and, for a ``c_source``
        target, ``c_files`` (the header and the source).

    Raises:
        ValueError: For an unknown target or an invalid target field, a
            mode the target does not run, ``batch_size`` or ``int8_io`` in
            ``export_kwargs``, a ``c_name`` that is not a C identifier,
            ``sparse=True`` for a TFLite Micro or Vela target, or as
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
    no_sparse = _NO_SPARSE.get(target.runtime)
    if sparse is None:
        sparse = False if no_sparse else "auto"
    elif _check_sparse(sparse) is True and no_sparse:
        raise ValueError(
            f"Received: sparse=True for target {target.name!r}; expected False or 'auto': "
            f"{no_sparse}.")
    result = export_tflite(
        model, path, mode,
        batch_size=1 if target.fixed_batch else None,
        int8_io=target.int8_io,
        sparse=False if no_sparse else sparse,
        **export_kwargs,
    )
    if no_sparse:
        result = dataclasses.replace(
            result, sparse_reason=f"not tried: target runtime {target.runtime!r}: {no_sparse}")
    if not target.c_source:
        return result
    c_files = write_c_source(result.path, result.path.parent, name=c_name)
    return dataclasses.replace(result, c_files=c_files)


def convert_for_target(
    model: keras.Model,
    target: str | Target | Mapping[str, Any],
    mode: str | None = None,
    *,
    representative_data: np.ndarray | None = None,
    num_calibration_samples: int = 8,
    untrained: bool = False,
) -> bytes:
    """The ``.tflite`` bytes `export_for_target` would write, converted but not verified.

    For sizing a model **before it is trained**: the file's bytes and the
    arena TFLite Micro plans for it follow from the layers and their shapes,
    not from the weights' values, as long as no weight is trivially zero or
    one (the converter folds those away). With ``untrained=True`` the
    conversion runs on random weights in [0.25, 1) (the model's own are put
    back afterwards), so an untrained model converts to the trained one's
    graph. Nothing is verified (the outputs of an untrained model mean
    nothing) and nothing is written.

    Args:
        model: A built ``tf_keras`` model.
        target: As `export_for_target`.
        mode: As `export_for_target`.
        representative_data: Model inputs to calibrate an int8 conversion
            (required for ``int8``); the first ``num_calibration_samples`` are used.
        num_calibration_samples: Calibration samples (a positive integer): the
            quantization scales they give do not change the file's layout.
        untrained: Convert with random non-trivial weights in place of the
            model's (for an untrained model; see above).

    Returns:
        The flatbuffer's bytes.

    Raises:
        ValueError: As `export_for_target`, or for int8 without
            ``representative_data``; all before any conversion.
        TypeError: If ``model`` is not a tf_keras model.
    """
    target = get_target(target)
    mode = target.default_mode if mode is None else target.check_mode(mode)
    model, _ = as_tf_keras(model, arg="model")  # a Keras 3 model is converted exactly
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Received: model of type {type(model).__name__}; expected a tf_keras or Keras 3 "
            "Model.")
    count = check_positive_int("num_calibration_samples", num_calibration_samples)
    calibration = None
    if mode == "int8":
        if representative_data is None:
            raise ValueError(
                "Received: representative_data=None with mode='int8'; expected an array of model "
                "inputs, shape (n, *input_shape), to calibrate the int8 quantization.")
        calibration = _check_data("representative_data", representative_data,
                                  _input_spec(model))[:count]
    if not untrained:
        return _convert(model, mode, calibration, target.int8_io,
                        1 if target.fixed_batch else None)
    # Weights of an untrained model are zeros and ones in places (biases, batch-norm
    # offsets and scales) that the converter folds away: an `x + 0` loses its ADD and two
    # zero biases share one buffer, so the file and TFLite Micro's arena come out smaller
    # than the trained model's. Non-trivial values, set for the conversion only, keep the
    # trained model's graph.
    saved = model.get_weights()
    rng = np.random.default_rng(0)
    try:
        model.set_weights([rng.uniform(0.25, 1.0, w.shape).astype(w.dtype)
                           if np.issubdtype(w.dtype, np.floating) else w for w in saved])
        return _convert(model, mode, calibration, target.int8_io,
                        1 if target.fixed_batch else None)
    finally:
        model.set_weights(saved)
