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
import math
import os
import warnings
from pathlib import Path

import numpy as np

from keras_autoopt._backend import keras, tf
from keras_autoopt._checks import check_positive_int
from keras_autoopt._defaults import EXPORT_MODES  # defined once, without TensorFlow
from keras_autoopt._io import atomic_write_bytes
from keras_autoopt.measure import TFLiteRunner, top1_labels

__all__ = [
    "DEFAULT_MAX_ACCURACY_DROP",
    "DEFAULT_MIN_TOP1_AGREEMENT",
    "DEFAULT_TOLERANCES",
    "EXPORT_MODES",
    "SANITY_MIN_TOP1_AGREEMENT",
    "VERIFY_LEVELS",
    "ExportResult",
    "ExportVerificationError",
    "export_tflite",
]

DEFAULT_TOLERANCES = {
    "float32": 1e-4,
    "float16": 1e-2,
    "dynamic": 0.1,
    "int8": 0.15,
}
"""Largest accepted absolute difference between Keras and TFLite outputs, per mode.

Tuned for classifiers with softmax (probability) outputs; see `export_tflite`
for the measurements behind them. Models with logits or other unbounded
outputs need a ``tolerance`` of their own.
"""

DEFAULT_MIN_TOP1_AGREEMENT = {
    "float32": 0.98,
    "float16": 0.95,
    "dynamic": 0.9,
    "int8": 0.9,
}
"""Smallest accepted share of samples whose top-1 class is the same in Keras and TFLite."""

DEFAULT_MAX_ACCURACY_DROP = 0.005
"""Largest accepted accuracy drop from Keras to TFLite on labelled verification data.

A fraction: 0.005 is half a percentage point. A TFLite model more accurate
than the Keras model always passes.
"""

VERIFY_LEVELS = ("strict", "sanity")
"""The verification policies `export_tflite` accepts (its ``verify`` argument).

- ``"strict"``: the export fails when its outputs differ from Keras's by more
  than ``tolerance``, its top-1 agreement is under ``min_top1_agreement``
  (`DEFAULT_MIN_TOP1_AGREEMENT` of the mode), or its accuracy is more than
  ``max_accuracy_drop`` below Keras's; for the models a user ships.
- ``"sanity"``: the export fails only when it is broken: top-1 agreement under
  ``min_top1_agreement`` (`SANITY_MIN_TOP1_AGREEMENT`), NaN or infinite
  outputs, or outputs of another shape. The differences and the accuracy drop
  are measured, not checked; for search trials, which are judged on the
  ``.tflite`` itself.

Both fail an export the converter rejects (its own error, raised as is).
"""

SANITY_MIN_TOP1_AGREEMENT = 0.9
"""Smallest top-1 agreement of a ``verify="sanity"`` export, in every mode.

Trained models agreed on >= 99.5 % of samples in every mode; 90 % is where
an export stops being a lossy copy of its model (see `export_tflite`).
"""

DEFAULT_VERIFY_SAMPLES = 64
"""Samples of ``representative_data`` used for verification when no ``verify_data`` is given."""

_INT8_INPUT_STATS_WARNING = "Statistics for quantized inputs were expected"


class ExportVerificationError(RuntimeError):
    """The exported model's outputs or accuracy differ too much from the Keras model's.

    Attributes:
        mode: The export mode.
        max_abs_diff: Largest absolute difference observed between the outputs
            (``math.inf`` when the output shapes differ).
        tolerance: The tolerance it was checked against.
        top1_agreement: Share of samples with the same top-1 class.
        min_top1_agreement: The agreement required.
        keras_accuracy: The Keras model's accuracy on the verification data;
            None when no labels were given.
        tflite_accuracy: The TFLite model's accuracy on the same data; None
            when no labels were given.
        max_accuracy_drop: The largest accuracy drop allowed; None when no
            labels were given or with ``verify="sanity"`` (the accuracy drop
            was not checked).
        verify_samples: How many samples were verified; None if unknown.
        verify: The verification policy, one of `VERIFY_LEVELS` (with
            ``"sanity"``, ``tolerance`` is ``math.inf``: not checked).

    """

    def __init__(
        self,
        message: str,
        *,
        mode: str,
        max_abs_diff: float,
        tolerance: float,
        top1_agreement: float,
        min_top1_agreement: float,
        keras_accuracy: float | None = None,
        tflite_accuracy: float | None = None,
        max_accuracy_drop: float | None = None,
        verify_samples: int | None = None,
        verify: str = "strict",
    ):
        super().__init__(message)
        self.mode = mode
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.top1_agreement = top1_agreement
        self.min_top1_agreement = min_top1_agreement
        self.keras_accuracy = keras_accuracy
        self.tflite_accuracy = tflite_accuracy
        self.max_accuracy_drop = max_accuracy_drop
        self.verify_samples = verify_samples
        self.verify = verify

    def to_dict(self) -> dict:
        """Return the mode and every figure of the failed check, for a report.

        The message is not included: a report record is typically
        ``{"name": ..., "reason": str(error), **error.to_dict()}``.

        Returns:
            A dict with the keys ``mode``, ``verify_samples``,
            ``max_abs_diff``, ``tolerance``, ``top1_agreement``,
            ``min_top1_agreement``, ``keras_accuracy``, ``tflite_accuracy``
            and ``max_accuracy_drop`` (values as the attributes; an infinite
            ``max_abs_diff`` is kept as ``math.inf``).

        """
        return {
            "mode": self.mode,
            "verify_samples": self.verify_samples,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "top1_agreement": self.top1_agreement,
            "min_top1_agreement": self.min_top1_agreement,
            "keras_accuracy": self.keras_accuracy,
            "tflite_accuracy": self.tflite_accuracy,
            "max_accuracy_drop": self.max_accuracy_drop,
        }


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

    def to_dict(self) -> dict:
        """Return the result as a JSON-serializable dict (``path`` as a string).

        Returns:
            A dict with one entry per field.

        """
        result = dataclasses.asdict(self)
        result["path"] = str(self.path)
        return result


@dataclasses.dataclass(frozen=True)
class _Figures:
    """What one verification measured (accuracies None without labels)."""

    max_abs_diff: float
    top1_agreement: float
    keras_accuracy: float | None
    tflite_accuracy: float | None
    samples: int


def _input_spec(model: keras.Model) -> tf.TensorSpec | None:
    """Return the model's single input spec, or None when it has several."""
    spec = model.save_spec()
    if spec is None:
        raise ValueError(
            f"Received: model={model.name!r} whose input shape is unknown; expected a model "
            "with a known input shape. Call the model on a batch, or fit() or predict() it, "
            "before exporting (for subclassed models, build(input_shape) alone does not "
            "record it)."
        )
    specs = tf.nest.flatten(spec)
    return specs[0] if len(specs) == 1 else None


def _check_data(name: str, data: object, spec: tf.TensorSpec | None) -> np.ndarray:
    if spec is None:
        raise ValueError(
            f"Received: {name} for a model with several inputs; expected a model with a "
            f"single input when {name} is given."
        )
    data = np.asarray(data)
    expected = tuple(spec.shape[1:])
    if (
        data.ndim != len(expected) + 1
        or len(data) == 0
        or any(e is not None and e != g for e, g in zip(expected, data.shape[1:], strict=False))
    ):
        shown = ", ".join("?" if e is None else str(e) for e in expected)
        raise ValueError(
            f"Received: {name} with shape {data.shape}; expected at least one sample of the "
            f"model's input shape, i.e. shape (n, {shown})."
        )
    if data.dtype.kind not in "biuf":
        raise ValueError(
            f"Received: {name} with dtype {data.dtype}; expected a numeric array.")
    data = data.astype(spec.dtype.as_numpy_dtype, copy=False)
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise ValueError(
            f"Received: {name} with {bad} NaN or infinite values; expected finite values.")
    return data


def _check_fraction(name: str, value: object, *, upper: float | None) -> float:
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and not math.isnan(value)
        and value >= 0
        and (upper is None or value <= upper)
    )
    if not ok:
        expected = (
            "a number >= 0 (math.inf disables the check)"
            if upper is None
            else f"a number in [0, {upper}]"
        )
        raise ValueError(f"Received: {name}={value!r}; expected {expected}.")
    return float(value)


def _check_max_accuracy_drop(value: object) -> float:
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and not math.isnan(value)
        and 0 <= value < 1
    )
    if not ok:
        raise ValueError(
            f"Received: max_accuracy_drop={value!r}; expected a fraction in [0, 1) "
            "(0.005 allows half a percentage point)."
        )
    return float(value)


def _check_verify(verify: object, *, tolerance: object, max_accuracy_drop: object) -> None:
    """Check the ``verify`` policy, and that no limit it does not apply is given."""
    if not isinstance(verify, str) or verify not in VERIFY_LEVELS:
        raise ValueError(
            f"Received: verify={verify!r}; expected 'strict' (outputs within `tolerance`, "
            "top-1 agreement and accuracy drop checked) or 'sanity' (only a broken export "
            "fails: top-1 agreement under `min_top1_agreement`, NaN or infinite outputs)."
        )
    if verify == "strict":
        return
    for name, value in (("tolerance", tolerance), ("max_accuracy_drop", max_accuracy_drop)):
        if value is not None:
            raise ValueError(
                f"Received: {name}={value!r} with verify='sanity'; expected {name}=None: a "
                f"sanity check measures the figure {name} limits but does not check it (pass "
                "verify='strict' to check it)."
            )


def _output_classes(model: keras.Model) -> int | None:
    """Return how many classes the model's single output scores, or None if unknown."""
    try:
        shape = model.output_shape
    except (AttributeError, RuntimeError, ValueError):
        return None
    if not isinstance(shape, tuple) or len(shape) < 2 or not isinstance(shape[-1], int):
        return None
    # One score per sample is a sigmoid classifier: classes 0 and 1.
    return 2 if shape[-1] == 1 else shape[-1]


def _check_labels(
    labels: object, verify_data: np.ndarray | None, model: keras.Model
) -> np.ndarray:
    if verify_data is None:
        raise ValueError(
            "Received: verify_labels with verify_data=None; expected verify_data too, the "
            "inputs whose classes verify_labels gives."
        )
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Received: verify_labels with shape {labels.shape} and dtype {labels.dtype}; "
            "expected integer class labels of shape (n,) (for one-hot labels, pass "
            "labels.argmax(axis=1))."
        )
    if len(labels) != len(verify_data):
        raise ValueError(
            f"Received: verify_labels with {len(labels)} labels; expected {len(verify_data)}, "
            "one per verify_data sample."
        )
    low, high = int(labels.min()), int(labels.max())
    classes = _output_classes(model)
    if low < 0 or (classes is not None and high >= classes):
        bad = low if low < 0 else high
        expected = "class indices >= 0" if classes is None else (
            f"class indices in [0, {classes - 1}] for a model with {classes} classes"
        )
        raise ValueError(f"Received: verify_labels with the label {bad}; expected {expected}.")
    return labels.astype("int64", copy=False)


def _convert(model: keras.Model, mode: str, calibration: np.ndarray | None,
             int8_io: bool = True) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":

        def representative_dataset():
            for sample in calibration:
                yield [sample[np.newaxis]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # Emitted for every int8-input model: the converter asks for input
        # statistics that only the legacy (TOCO) path used; the calibration
        # data already fixes the input quantization.
        warnings.filterwarnings("ignore", message=_INT8_INPUT_STATS_WARNING)
        return converter.convert()


def _keras_outputs(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    outputs = []
    for start in range(0, len(x), batch_size):
        out = model(x[start : start + batch_size], training=False)
        if not tf.is_tensor(out):
            raise ValueError(
                f"Received: model={model.name!r} with several outputs; export verification "
                "expects a model with a single output (pass no verification data to skip it)."
            )
        outputs.append(out.numpy())
    return np.concatenate(outputs, axis=0).astype("float32")


def _tflite_outputs(tflite_model: bytes, x: np.ndarray) -> np.ndarray:
    """Run the converted model under LiteRT on ``x``, one sample per invoke."""
    return TFLiteRunner(tflite_model).predict(x, batch_size=1)


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f} %"


def _points(fraction: float) -> str:
    return f"{100 * fraction:.3g} pt"


def _verify(
    model: keras.Model,
    tflite_model: bytes,
    x: np.ndarray,
    *,
    mode: str,
    tolerance: float,
    min_top1_agreement: float,
    labels: np.ndarray | None = None,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    path: Path | None = None,
    verify: str = "strict",
) -> _Figures:
    """Check the TFLite model against the Keras model on ``x`` (and ``labels``).

    The accuracy drop is compared as a count of samples over ``len(x)``, so a
    drop of exactly ``max_accuracy_drop`` (1 sample in 200 for 0.005) passes.

    Returns:
        The figures measured.

    Raises:
        ExportVerificationError: Under either policy, if the output shapes
            differ, a TFLite output is NaN or infinite, or the agreement is
            below ``min_top1_agreement``; with ``verify="strict"`` also if
            the difference exceeds ``tolerance`` (or is NaN) or, with
            ``labels``, the Keras accuracy minus the TFLite accuracy exceeds
            ``max_accuracy_drop``.

    """
    strict = verify == "strict"
    expected = _keras_outputs(model, x)
    got = _tflite_outputs(tflite_model, x)
    n = len(x)
    same_shape = got.shape == expected.shape
    non_finite = int(got.size - np.count_nonzero(np.isfinite(got)))
    if same_shape:
        max_abs_diff = float(np.max(np.abs(got - expected)))
        agreement = float(np.mean(top1_labels(got) == top1_labels(expected)))
    else:
        max_abs_diff, agreement = math.inf, 0.0
    keras_accuracy = tflite_accuracy = None
    accuracy_failed = False
    if labels is not None:
        keras_correct = int(np.sum(top1_labels(expected) == labels))
        tflite_correct = int(np.sum(top1_labels(got) == labels)) if len(got) == n else 0
        keras_accuracy, tflite_accuracy = keras_correct / n, tflite_correct / n
        drop = (keras_correct - tflite_correct) / n
        accuracy_failed = strict and drop > max_accuracy_drop
    agreement_failed = agreement < min_top1_agreement
    outputs_failed = (strict and not max_abs_diff <= tolerance) or agreement_failed
    figures = _Figures(max_abs_diff, agreement, keras_accuracy, tflite_accuracy, n)
    if same_shape and not non_finite and not outputs_failed and not accuracy_failed:
        return figures

    if not same_shape:
        parts = [
            f"the TFLite output has shape {got.shape} where the Keras output has shape "
            f"{expected.shape}"
        ]
    elif strict:
        outputs_text = (
            f"max abs difference between the Keras and TFLite outputs is {max_abs_diff:.6g} "
            f"(tolerance {tolerance:g}), top-1 agreement is {agreement:.1%} "
            f"(minimum {min_top1_agreement:.1%})"
        )
        failing, passing = [], []
        (failing if outputs_failed else passing).append(outputs_text)
        if labels is not None:
            if drop > 0:
                relation = ">" if accuracy_failed else "<="
                margin = f"drop {_points(drop)} {relation} {_points(max_accuracy_drop)} allowed"
            else:
                margin = f"no drop, limit {_points(max_accuracy_drop)}"
            accuracy_text = (
                f"accuracy {_percent(tflite_accuracy)} vs {_percent(keras_accuracy)} in Keras "
                f"({margin})"
            )
            (failing if accuracy_failed else passing).insert(0, accuracy_text)
        parts = failing + passing
    else:
        # Only broken exports fail a sanity check: the failing figure first,
        # then what was measured without a limit.
        agreement_text = (
            f"top-1 agreement is {agreement:.1%} (minimum {min_top1_agreement:.1%})")
        parts = [agreement_text] if agreement_failed else []
        if labels is not None:
            parts.append(
                f"accuracy {_percent(tflite_accuracy)} vs {_percent(keras_accuracy)} in Keras")
        parts.append(f"max abs difference {max_abs_diff:.3g}")
        if not agreement_failed:
            parts.append(agreement_text)
    if same_shape and non_finite:
        parts.insert(0, f"{non_finite} of the {got.size} TFLite output values are NaN or infinite")
    knobs = []
    if strict and outputs_failed and not non_finite:
        knobs.append("a larger `tolerance`")
    if agreement_failed:
        knobs.append("a lower `min_top1_agreement`")
    if accuracy_failed:
        knobs.append("a larger `max_accuracy_drop`")
    knobs += ["better `representative_data`", "or choose another mode"]
    where = "" if path is None else f" The file was not written to '{path}'."
    check = "verification" if strict else "its sanity check"
    raise ExportVerificationError(
        f"{mode} export failed {check} on {n} samples: {'; '.join(parts)}.{where} "
        f"Pass {', '.join(knobs)}.",
        mode=mode,
        max_abs_diff=max_abs_diff,
        tolerance=tolerance if strict else math.inf,
        top1_agreement=agreement,
        min_top1_agreement=min_top1_agreement,
        keras_accuracy=keras_accuracy,
        tflite_accuracy=tflite_accuracy,
        max_accuracy_drop=None if labels is None or not strict else max_accuracy_drop,
        verify_samples=n,
        verify=verify,
    )


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

    Returns:
        An `ExportResult` with the verification figures (``max_abs_diff``,
        ``top1_agreement``, ``verify_samples`` and, with ``verify_labels``,
        ``keras_accuracy`` and ``tflite_accuracy``).

    Raises:
        TypeError: If ``model`` is not a ``tf_keras`` model.
        ValueError: For a bad argument (unknown mode, int8 without
            representative data, data of the wrong shape, a count, tolerance,
            agreement or accuracy drop out of range, an unknown ``verify``, a
            ``tolerance`` or ``max_accuracy_drop`` with ``verify="sanity"``,
            ``verify_labels`` without
            ``verify_data``, of another length, not integers or outside the
            model's classes, a model with an unknown input shape, or
            verification data for a model with several inputs or outputs),
            before any conversion.
        ExportVerificationError: If the converted model fails verification;
            nothing is written then. The error carries every figure measured
            (see its ``to_dict``).

    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Received: model of type {type(model).__name__}; expected a tf_keras Model."
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
    tflite_model = _convert(model, mode, calibration, int8_io)
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
                            verify=verify)
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
    )
