"""Argument checks of `export_tflite`: data, labels, limits and the ``verify`` policy."""

from __future__ import annotations

import math

import numpy as np

from keras_autoopt._backend import keras, tf
from keras_autoopt.export._verification import VERIFY_LEVELS


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
