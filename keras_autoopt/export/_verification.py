"""Verification of a converted ``.tflite`` against its Keras model: limits, figures, errors.

The converted model runs under LiteRT and the Keras model on the same inputs;
`_verify` compares their outputs, top-1 classes and (with labels) accuracies
under the ``verify`` policy (`VERIFY_LEVELS`) and raises
`ExportVerificationError` with every figure measured when the export fails.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from keras_autoopt._backend import keras, tf
from keras_autoopt.measure import TFLiteRunner, top1_labels

__all__ = [
    "DEFAULT_MAX_ACCURACY_DROP",
    "DEFAULT_MIN_TOP1_AGREEMENT",
    "DEFAULT_TOLERANCES",
    "SANITY_MIN_TOP1_AGREEMENT",
    "VERIFY_LEVELS",
    "ExportVerificationError",
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
  ``min_top1_agreement`` (`SANITY_MIN_TOP1_AGREEMENT`; with labels, only
  together with an accuracy more than `SANITY_MAX_ACCURACY_DROP` below
  Keras's), NaN or infinite outputs, or outputs of another shape. The
  differences and the accuracy drop are measured, not checked; for search
  trials, which are judged on the ``.tflite`` itself.

Both fail an export the converter rejects (its own error, raised as is).
"""

SANITY_MIN_TOP1_AGREEMENT = 0.9
"""Smallest top-1 agreement of a ``verify="sanity"`` export, in every mode.

Trained models agreed on >= 99.5 % of samples in every mode; 90 % is where
an export stops being a lossy copy of its model (see `export_tflite`).
"""


SANITY_MAX_ACCURACY_DROP = 0.05
"""With labels, a ``verify="sanity"`` export whose top-1 agreement is under the minimum
fails only if its accuracy is also more than this below Keras's (5 points).

Measured in the demo's search: a ConvNet at 33 % validation accuracy agreed with its int8
file on 81.5 % of samples while the file scored 30.4 % (2.6 points less): a lossy copy of a
weak model, not a broken file; a broken export falls towards chance.
"""


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
class _Figures:
    """What one verification measured (accuracies None without labels)."""

    max_abs_diff: float
    top1_agreement: float
    keras_accuracy: float | None
    tflite_accuracy: float | None
    samples: int


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
    if not strict and labels is not None and len(got) == n:
        # A weak model's outputs sit near its decision boundaries, where rounding flips the
        # top-1 class of many samples without making the file worse: with labels, a sanity
        # check fails on disagreement only when the file also loses accuracy.
        agreement_failed = agreement_failed and drop > SANITY_MAX_ACCURACY_DROP
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
