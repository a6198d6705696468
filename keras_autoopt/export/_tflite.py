"""Export a ``tf_keras`` model to ``.tflite``, check it against the model, then write it.

Every export with verification data is checked before anything is written:
the converted model runs under LiteRT and the Keras model on the same inputs,
and the export fails (`ExportVerificationError`, no file written) when their
outputs differ by more than a tolerance, their top-1 classes agree on too few
samples, or (with ``verify_labels``) the TFLite model's accuracy is more than
``max_accuracy_drop`` below the Keras model's. The figures measured are kept
in the `ExportResult` (or the error) for the report.

That is the ``verify="strict"`` policy, for the exports a user ships. A
search, which measures every trial on its ``.tflite`` anyway, uses
``verify="sanity"``: only a broken export fails (top-1 agreement under
`SANITY_MIN_TOP1_AGREEMENT`, NaN or infinite outputs, another output shape);
an export that merely loses a little accuracy passes, its figures measured.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt._checks import check_positive_int
from keras_autoopt._defaults import EXPORT_MODES  # defined once, without TensorFlow
from keras_autoopt._io import atomic_write_bytes
from keras_autoopt.export._arguments import (
    _check_data,
    _check_fraction,
    _check_labels,
    _check_max_accuracy_drop,
    _check_verify,
    _input_spec,
)
from keras_autoopt.export._converter import _convert
from keras_autoopt.export._sparse import (
    _AUTO_SKIPS,
    SPARSE_MIN_ZEROS,
    SPARSE_PROBE_SAMPLES,
    SPARSE_UNSUPPORTED_MODES,
    _check_sparse,
    _choose,
    _load,
    _max_weight_sparsity,
    _percent,
    _sparse_tensor_count,
    _strip_pruning,
)
from keras_autoopt.export._verification import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_MIN_TOP1_AGREEMENT,
    DEFAULT_TOLERANCES,
    SANITY_MIN_TOP1_AGREEMENT,
    _verify,
)
from keras_autoopt.load import as_tf_keras

__all__ = ["EXPORT_MODES", "ExportResult", "export_tflite"]

DEFAULT_VERIFY_SAMPLES = 64
"""Samples of ``representative_data`` used for verification when no ``verify_data`` is given."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export_tflite` wrote.

    Attributes:
        path: The ``.tflite`` file.
        mode: The export mode, one of `EXPORT_MODES`.
        size_bytes: Size of the file.
        max_abs_diff: Largest absolute difference between the Keras and TFLite
            outputs on the verification data; None if nothing was verified.
        top1_agreement: Share of verification samples with the same top-1
            class in Keras and TFLite; None if nothing was verified.
        keras_accuracy: The Keras model's accuracy on the verification data;
            None without ``verify_labels``.
        tflite_accuracy: The TFLite model's accuracy on the verification
            data; None without ``verify_labels``.
        verify_samples: How many samples were verified; 0 if none.
        verify: The verification policy the export passed, one of
            `VERIFY_LEVELS`.
        batch_size: The input's fixed batch size (1), or None for a dynamic batch.
        c_files: The C header and source holding the model as an array
            (`write_c_source`), when written; empty otherwise.
        sparse_encoding: Whether the written file stores weights in TFLite's
            sparse format (``Optimize.EXPERIMENTAL_SPARSITY``).
        dense_size_bytes: Size of the dense conversion when both a dense and
            a sparse one were made (``sparse="auto"``); None otherwise.
        sparse_reason: One line on the sparse encoding: why it was kept
            (``"kept: 83 % smaller (...)"``), rejected, or not tried; None
            when it was not asked for (``sparse=False``).

    """

    path: Path
    mode: str
    size_bytes: int
    max_abs_diff: float | None
    top1_agreement: float | None
    keras_accuracy: float | None = None
    tflite_accuracy: float | None = None
    verify_samples: int = 0
    verify: str = "strict"
    batch_size: int | None = None
    c_files: tuple[Path, ...] = ()
    sparse_encoding: bool = False
    dense_size_bytes: int | None = None
    sparse_reason: str | None = None

    def to_dict(self) -> dict:
        """Return the result as a JSON-serializable dict (``path`` as a string).

        Returns:
            A dict with one entry per field.

        """
        result = dataclasses.asdict(self)
        result["path"] = str(self.path)
        result["c_files"] = [str(file) for file in self.c_files]
        return result


def export_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    mode: str = "float32",
    *,
    representative_data: np.ndarray | None = None,
    num_calibration_samples: int = 200,
    verify_data: np.ndarray | None = None,
    verify_labels: np.ndarray | None = None,
    tolerance: float | None = None,
    min_top1_agreement: float | None = None,
    max_accuracy_drop: float | None = None,
    int8_io: bool = True,
    verify: str = "strict",
    batch_size: int | None = None,
    sparse: bool | str = False,
) -> ExportResult:
    """Convert a ``tf_keras`` model to ``.tflite``, verify it, and write it atomically.

    Modes:

    - ``"float32"``: plain conversion.
    - ``"dynamic"``: dynamic-range quantization (``Optimize.DEFAULT``): weights
      of large tensors (1024+ elements) are stored as int8 and the kernels
      quantize activations on the fly; inputs and outputs stay float32.
    - ``"float16"``: ``Optimize.DEFAULT`` with float16 weights.
    - ``"int8"``: full integer quantization, int8 input and output tensors
      (float32 ones with ``int8_io=False``, the converter adding quantize /
      dequantize ops), calibrated on ``num_calibration_samples`` samples drawn (without
      replacement, fixed seed) from ``representative_data``.

    Pruned weights can be stored in TFLite's sparse format
    (``Optimize.EXPERIMENTAL_SPARSITY``), with ``sparse``:

    - ``False`` (the default): dense weights, as always.
    - ``True``: sparse encoding of every weight tensor with 30 % zeros or
      more (`SPARSE_MIN_ZEROS`); a ``ValueError`` if LiteRT cannot load the
      result or its outputs are NaN. Refused for ``"dynamic"`` before any
      conversion.
    - ``"auto"``: when some weight tensor has 30 % zeros or more, both a
      dense and a sparse file are converted. The sparse one is rejected if
      LiteRT cannot load it or its outputs on 16 verification (else
      representative) samples are NaN or differ from the dense file's by
      more than ``DEFAULT_TOLERANCES[mode]``; otherwise it is kept if it is
      smaller, or if its median latency under LiteRT is at least 10 % lower
      in each of 5 rounds of 40 timed runs of each file, alternated so that
      a busy machine slows both alike (`SPARSE_MIN_SPEEDUP`; the reason
      gives the medians of all 200 runs). Not tried without sparse weights
      (no second conversion then), nor in ``"dynamic"`` and ``"int8"``
      modes (see below).

    Measured (TF 2.21, ai-edge-litert with its default XNNPACK delegate):
    pruned with TF-MOT (unstructured), ``float32`` and ``float16`` sparse
    files are much smaller (0.17x and 0.23x at 90 % sparsity) at the same
    latency: the weights are decoded at load (a ``DENSIFY`` operator per
    weight), so the RAM they take is not saved (slightly more at load).
    Fully connected weights pruned in 1x4 blocks run sparse kernels instead
    (faster in float32, NaN in float16: rejected). ``int8`` sparse files
    load only for MLPs pruned in 1x4 blocks (XNNPACK refuses a model with a
    ``DENSIFY`` of int8 weights, i.e. any pruned convolution), and run
    slower than dense, so ``"auto"`` does not try int8 (``sparse=True``
    does); ``dynamic`` never loads. TFLite Micro and Vela have no sparse
    tensors: `export_for_target` never encodes for them. The result's
    ``sparse_encoding``, ``dense_size_bytes`` and ``sparse_reason`` say what
    was done. A model still wrapped for TF-MOT pruning is stripped
    (``strip_pruning``) before any conversion, whatever ``sparse``.

    Verification runs the converted bytes under LiteRT (`TFLiteRunner`) and the
    Keras model on the same inputs: ``verify_data`` if given, else the first
    64 samples of ``representative_data``, else nothing is verified. The
    export fails when the largest absolute output difference exceeds
    ``tolerance`` or the share of samples with the same top-1 class is below
    ``min_top1_agreement``. With ``verify_labels`` (the classes of the
    ``verify_data`` samples, e.g. the validation labels) it also fails when
    the TFLite model's accuracy is more than ``max_accuracy_drop`` below the
    Keras model's (0.5 point by default; a TFLite model more accurate than
    Keras passes). The file is written only once verification has passed, so
    a failed export leaves ``path`` as it was.

    That is the default policy, ``verify="strict"``. With ``verify="sanity"``
    (for search trials, measured on the ``.tflite`` itself) only a broken
    export fails: top-1 agreement under ``min_top1_agreement`` (default
    `SANITY_MIN_TOP1_AGREEMENT`, 90 %, in every mode), NaN or infinite
    TFLite outputs, or outputs of another shape; the output difference and
    the accuracies are measured and returned, not checked, so ``tolerance``
    and ``max_accuracy_drop`` must be left None. Under both policies, NaN or
    infinite TFLite outputs fail the export.

    The accuracy check counts samples: on 64 samples one flipped prediction
    is a 1.6-point drop, so a 0.5-point limit only tolerates flips on 200+
    samples. Verify on the whole validation split, not on a handful.

    Default tolerances (`DEFAULT_TOLERANCES`, for softmax probabilities) and
    agreements (`DEFAULT_MIN_TOP1_AGREEMENT`):

    ==========  =========  =========  ======================================
    mode        tolerance  agreement  largest difference measured
    ==========  =========  =========  ======================================
    float32     1e-4       98 %       1.4e-6
    float16     1e-2       95 %       1.9e-3
    dynamic     0.1        90 %       3.3e-2
    int8        0.15       90 %       6.7e-2
    ==========  =========  =========  ======================================

    The measurements: 8x8 digits (scikit-learn), four architectures (MLP,
    Conv32 stacks + Dense128, Conv + BatchNorm + global pooling, depthwise
    separable) and a tiny 3-class CNN, three seeds each, trained and
    untrained, compared on 64 and on ~400 samples. Each tolerance leaves
    2-70x headroom over the worst case seen, and still catches real faults,
    which moved softmax outputs by 0.2 to 1.0 (int8 inputs fed unquantized,
    calibration data at the wrong scale, output zero point ignored).

    Top-1 agreement was >= 99.5 % in every mode for trained models
    (accuracy >= 95 %), 100 % for float32 and >= 99.8 % for float16
    everywhere. Near-ties make it drop where outputs are close to uniform:
    int8 fell to 94 % on a poorly trained model (11-32 % accuracy) and to
    77-87 % on untrained ones (dynamic: >= 98.4 %), so a model at chance
    level may fail int8 verification unless ``min_top1_agreement`` is
    lowered. The float32 minimum is 98 %, not 100 %, so that one exact tie
    in 64 samples, broken differently by Keras and LiteRT, cannot fail an
    export; a real float32 fault is caught by the 1e-4 tolerance anyway.

    Args:
        model: A ``tf_keras`` model with a known input shape (Sequential,
            functional, or subclassed and already called on data).
        path: Destination ``.tflite`` file; its folder is created if needed.
        mode: One of `EXPORT_MODES`.
        representative_data: Real-valued model inputs, shape
            ``(n, *input_shape)``; required for ``"int8"`` (calibration), and
            the default verification data for every mode.
        num_calibration_samples: Most samples used for int8 calibration.
        verify_data: Inputs on which to compare the Keras and TFLite models.
        verify_labels: Integer class labels of the ``verify_data`` samples,
            shape ``(n,)`` (or ``(n, 1)``); requires ``verify_data``. When
            given, both models' accuracies are measured and compared.
        tolerance: Largest accepted absolute output difference; defaults to
            ``DEFAULT_TOLERANCES[mode]``.
        min_top1_agreement: Smallest accepted top-1 agreement, in [0, 1];
            defaults to ``DEFAULT_MIN_TOP1_AGREEMENT[mode]``.
        max_accuracy_drop: Largest accepted Keras accuracy minus TFLite
            accuracy, a fraction in [0, 1); defaults to
            `DEFAULT_MAX_ACCURACY_DROP` (0.005). Used only with
            ``verify_labels``.
        int8_io: For ``mode="int8"``: int8 input and output tensors (True) or
            float32 ones around the integer graph (False).
        verify: The verification policy, one of `VERIFY_LEVELS`:
            ``"strict"`` (outputs, agreement and accuracy drop checked) or
            ``"sanity"`` (only a broken export fails).
        batch_size: None (the default) exports a dynamic batch (input shape
            signature ``[-1, ...]``); 1 fixes the batch to 1 (``[1, ...]``),
            as TFLite Micro and Vela need. Other sizes are not supported.
        sparse: False, True or ``"auto"``: store pruned weights in TFLite's
            sparse format never, always, or when it makes the file smaller or
            faster (see above).

    Returns:
        An `ExportResult` with the verification figures (``max_abs_diff``,
        ``top1_agreement``, ``verify_samples`` and, with ``verify_labels``,
        ``keras_accuracy`` and ``tflite_accuracy``).

    Raises:
        TypeError: If ``model`` is not a ``tf_keras`` model.
        ValueError: For a bad argument (unknown mode, int8 without
            representative data, data of the wrong shape, a count, tolerance,
            agreement or accuracy drop out of range, an unknown ``verify``,
            a ``sparse`` other than False, True or ``"auto"``,
            ``sparse=True`` with ``mode="dynamic"``, a
            ``batch_size`` other than None or 1, a
            ``tolerance`` or ``max_accuracy_drop`` with ``verify="sanity"``,
            ``verify_labels`` without
            ``verify_data``, of another length, not integers or outside the
            model's classes, a model with an unknown input shape, or
            verification data for a model with several inputs or outputs),
            before any conversion.
            With ``sparse=True``, also when LiteRT cannot load the sparse
            file (after the conversion; nothing is written).
        ExportVerificationError: If the converted model fails verification;
            nothing is written then. The error carries every figure measured
            (see its ``to_dict``).

    """
    model, _ = as_tf_keras(model, arg="model")  # a Keras 3 model is converted exactly
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Received: model of type {type(model).__name__}; expected a tf_keras or Keras 3 "
            "Model."
        )
    if mode not in EXPORT_MODES:
        raise ValueError(
            f"Received: mode={mode!r}; expected one of {', '.join(repr(m) for m in EXPORT_MODES)}."
        )
    if mode == "int8" and representative_data is None:
        raise ValueError(
            "Received: representative_data=None with mode='int8'; expected an array of model "
            "inputs, shape (n, *input_shape), to calibrate the int8 quantization."
        )
    num_calibration_samples = check_positive_int("num_calibration_samples", num_calibration_samples)
    sparse = _check_sparse(sparse)
    if sparse is True and mode in SPARSE_UNSUPPORTED_MODES:
        raise ValueError(
            f"Received: sparse=True with mode={mode!r}; expected sparse=False or 'auto' for this "
            f"mode: {SPARSE_UNSUPPORTED_MODES[mode]}.")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size != 1:
            raise ValueError(
                f"Received: batch_size={batch_size!r}; expected None (a dynamic batch) or 1 (a "
                "fixed batch of 1, for TFLite Micro and NPUs).")
        batch_size = 1
    _check_verify(verify, tolerance=tolerance, max_accuracy_drop=max_accuracy_drop)
    tolerance = (
        DEFAULT_TOLERANCES[mode]
        if tolerance is None
        else _check_fraction("tolerance", tolerance, upper=None)
    )
    min_top1_agreement = (
        (DEFAULT_MIN_TOP1_AGREEMENT[mode] if verify == "strict" else SANITY_MIN_TOP1_AGREEMENT)
        if min_top1_agreement is None
        else _check_fraction("min_top1_agreement", min_top1_agreement, upper=1.0)
    )
    max_accuracy_drop = (
        DEFAULT_MAX_ACCURACY_DROP
        if max_accuracy_drop is None
        else _check_max_accuracy_drop(max_accuracy_drop)
    )
    spec = _input_spec(model)
    if representative_data is not None:
        representative_data = _check_data("representative_data", representative_data, spec)
    if verify_data is not None:
        verify_data = _check_data("verify_data", verify_data, spec)
    if verify_labels is not None:
        verify_labels = _check_labels(verify_labels, verify_data, model)
    if verify_data is None and representative_data is not None:
        verify_data = representative_data[:DEFAULT_VERIFY_SAMPLES]
    if verify_data is not None and len(getattr(model, "outputs", None) or ()) > 1:
        raise ValueError(
            f"Received: model={model.name!r} with {len(model.outputs)} outputs; export "
            "verification expects a model with a single output (pass no verification data "
            "to skip it)."
        )

    calibration = None
    if mode == "int8":
        count = min(num_calibration_samples, len(representative_data))
        chosen = np.random.default_rng(0).choice(len(representative_data), count, replace=False)
        calibration = representative_data[np.sort(chosen)]

    path = Path(path)
    if not isinstance(int8_io, bool):
        raise ValueError(f"Received: int8_io={int8_io!r}; expected True or False.")
    tflite_model, sparse_fields = _convert_sparse_or_dense(
        model, mode, calibration, int8_io, batch_size, sparse,
        probe=_probe_data(spec, verify_data, representative_data),
        tolerance=DEFAULT_TOLERANCES[mode])
    figures = None
    if verify_data is not None:
        figures = _verify(
            model,
            tflite_model,
            verify_data,
            mode=mode,
            tolerance=tolerance,
            min_top1_agreement=min_top1_agreement,
            labels=verify_labels,
            max_accuracy_drop=max_accuracy_drop,
            path=path,
            verify=verify,
        )
    atomic_write_bytes(path, tflite_model)
    if figures is None:
        return ExportResult(path, mode, len(tflite_model), max_abs_diff=None, top1_agreement=None,
                            verify=verify, batch_size=batch_size, **sparse_fields)
    return ExportResult(
        path=path,
        mode=mode,
        size_bytes=len(tflite_model),
        max_abs_diff=figures.max_abs_diff,
        top1_agreement=figures.top1_agreement,
        keras_accuracy=figures.keras_accuracy,
        tflite_accuracy=figures.tflite_accuracy,
        verify_samples=figures.samples,
        verify=verify,
        batch_size=batch_size,
        **sparse_fields,
    )


def _probe_data(spec, verify_data: np.ndarray | None,
                representative_data: np.ndarray | None) -> np.ndarray | None:
    """Inputs to compare and time the dense and sparse files on; None for several inputs."""
    for data in (verify_data, representative_data):
        if data is not None:
            return data[:SPARSE_PROBE_SAMPLES]
    if spec is None or any(dim is None for dim in spec.shape[1:]):
        return None
    return np.zeros((1, *spec.shape[1:]), spec.dtype.as_numpy_dtype)


def _convert_sparse_or_dense(
    model: keras.Model, mode: str, calibration: np.ndarray | None, int8_io: bool,
    batch_size: int | None, sparse: bool | str, *, probe: np.ndarray | None, tolerance: float,
) -> tuple[bytes, dict]:
    """The bytes to write, and the `ExportResult` fields saying what was done about sparsity."""
    model = _strip_pruning(model)
    if sparse is False:
        return _convert(model, mode, calibration, int8_io, batch_size), {}
    if sparse is True:
        data = _convert(model, mode, calibration, int8_io, batch_size, sparse=True)
        count = _sparse_tensor_count(data)
        if not count:
            reason = (f"not encoded: no weight tensor has {_percent(SPARSE_MIN_ZEROS)} zeros or "
                      "more (sparse=True)")
            return data, {"sparse_reason": reason}
        loaded = _load(data)
        if not isinstance(loaded, str) and probe is not None \
                and not np.isfinite(loaded.predict(probe)).all():
            loaded = f"its outputs are NaN or infinite on {len(probe)} samples"
        if isinstance(loaded, str):
            raise ValueError(
                f"Received: sparse=True with mode={mode!r}; the sparse file does not work under "
                f"LiteRT ({loaded}); expected sparse=False or 'auto' (which keeps the dense "
                "file then) for this model and mode.")
        return data, {"sparse_encoding": True,
                      "sparse_reason": f"forced: {count} tensor(s) stored sparse (sparse=True)"}
    if mode in _AUTO_SKIPS:
        reason = f"not tried: {_AUTO_SKIPS[mode]}"
        return _convert(model, mode, calibration, int8_io, batch_size), {"sparse_reason": reason}
    zeros = _max_weight_sparsity(model)
    dense = _convert(model, mode, calibration, int8_io, batch_size)
    if zeros < SPARSE_MIN_ZEROS:
        reason = (f"not tried: no weight tensor is sparse (at most {_percent(zeros)} zeros, "
                  f"under {_percent(SPARSE_MIN_ZEROS)})")
        return dense, {"sparse_reason": reason}
    data = _convert(model, mode, calibration, int8_io, batch_size, sparse=True)
    fields = {"dense_size_bytes": len(dense)}
    if not _sparse_tensor_count(data):
        return dense, {**fields, "sparse_reason": "rejected: the converter stored no tensor "
                                                  "sparse"}
    keep, reason = _choose(dense, data, probe, tolerance)
    return (data if keep else dense), {**fields, "sparse_encoding": keep, "sparse_reason": reason}
