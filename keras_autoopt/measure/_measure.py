"""What a ``.tflite`` file costs and how well it does: size, gzip size, accuracy, latency.

Besides top-1 accuracy, the quality figures are the macro-averaged precision,
recall and F1 and the confusion matrix.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import statistics
import time
from pathlib import Path

import numpy as np

from keras_autoopt._checks import check_positive_int
from keras_autoopt.measure._litert import TFLiteRunner, top1_labels

__all__ = ["MIN_LATENCY_RUNS", "TFLiteMetrics", "measure_tflite"]

MIN_LATENCY_RUNS = 50
"""The latency is the median of at least this many timed ``invoke()`` calls."""


@dataclasses.dataclass(frozen=True)
class TFLiteMetrics:
    """Measurements of one ``.tflite`` file.

    Attributes:
        size_bytes: Size of the file.
        gzip_bytes: Size of the file compressed with gzip at level 9 (mtime 0,
            so the figure is deterministic); shows what pruning and clustering
            save on the wire, which the raw size does not.
        accuracy: Top-1 accuracy on the test set, between 0 and 1.
        latency_us_median: Median wall time of one single-sample
            ``invoke()``, in microseconds, after warm-up.
        latency_runs: Number of timed ``invoke()`` calls behind the median.
        precision_macro: Precision on the test set, averaged over the classes
            that occur in the labels or the predictions (a class never
            predicted counts 0, as scikit-learn's ``zero_division=0``).
        recall_macro: Recall on the test set, averaged over the same classes.
        f1_macro: F1 score on the test set, the mean of the per-class F1
            scores over the same classes (not the F1 of the two means).
        confusion: The confusion matrix on the test set: ``confusion[i][j]``
            test samples of class ``i`` were predicted as class ``j``. It has
            one row and one column per output class of the model (two for a
            single sigmoid output); its entries sum to the number of samples.

    """

    size_bytes: int
    gzip_bytes: int
    accuracy: float
    latency_us_median: float
    latency_runs: int
    precision_macro: float
    recall_macro: float
    f1_macro: float
    confusion: list[list[int]]

    def to_dict(self) -> dict:
        """Return the measurements as a JSON-serializable dict.

        Returns:
            A dict with one entry per field.

        """
        return dataclasses.asdict(self)


def _check_test_set(x_test: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x_test = np.asarray(x_test)
    y_test = np.asarray(y_test)
    if x_test.ndim == 0 or len(x_test) == 0:
        raise ValueError(
            f"Received: x_test with shape {x_test.shape}; expected at least one sample."
        )
    if x_test.dtype.kind not in "biuf":
        raise ValueError(
            f"Received: x_test with dtype {x_test.dtype}; expected a numeric (bool, integer or "
            "float) array."
        )
    finite = np.isfinite(x_test)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"Received: x_test with {int(np.size(finite) - np.count_nonzero(finite))} NaN or "
            f"infinite values, the first x_test[{', '.join(map(str, first))}]="
            f"{x_test[first]}; expected finite values."
        )
    if y_test.ndim != 1 or not (
        np.issubdtype(y_test.dtype, np.integer)
        or (np.issubdtype(y_test.dtype, np.floating) and np.all(y_test == np.round(y_test)))
    ):
        raise ValueError(
            f"Received: y_test with shape {y_test.shape} and dtype {y_test.dtype}; expected "
            "integer class labels of shape (n,) (not one-hot)."
        )
    if len(x_test) != len(y_test):
        raise ValueError(
            f"Received: x_test with {len(x_test)} samples and y_test with {len(y_test)} "
            "labels; expected the same number."
        )
    y_test = y_test.astype("int64")
    if y_test.min() < 0:
        raise ValueError(
            f"Received: y_test containing label {int(y_test.min())}; expected class indices >= 0."
        )
    return x_test, y_test


def _check_labels_fit(y_test: np.ndarray, runner: TFLiteRunner) -> None:
    """Refuse labels the model cannot predict: its accuracy would silently be capped."""
    shape = runner.output_details[0]["shape"] if len(runner.output_details) == 1 else None
    if shape is None or len(shape) != 2:
        return
    classes = max(int(shape[-1]), 2)  # one sigmoid output scores classes 0 and 1
    if int(y_test.max()) >= classes:
        raise ValueError(
            f"Received: y_test containing label {int(y_test.max())}; expected class indices "
            f"in [0, {classes}) for this model's {int(shape[-1])} output(s)."
        )


def _output_classes(outputs: np.ndarray, y_test: np.ndarray) -> int:
    """The model's number of classes, read from its outputs (a sigmoid output scores 2)."""
    per_sample = int(np.prod(outputs.shape[1:])) if outputs.ndim > 1 else 1
    return max(per_sample, 2, int(y_test.max()) + 1)


def classification_figures(
    y_true: np.ndarray, y_pred: np.ndarray, classes: int
) -> dict[str, float | list[list[int]]]:
    """Macro precision, recall and F1 and the confusion matrix of predicted labels.

    Args:
        y_true: The true class indices, shape ``(n,)``.
        y_pred: The predicted class indices, shape ``(n,)``.
        classes: The number of classes: the confusion matrix is
            ``classes`` x ``classes``; every label must be below it.

    Returns:
        ``{"precision_macro", "recall_macro", "f1_macro", "confusion"}``, the
        fields of `TFLiteMetrics` of the same names.

    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    confusion = confusion_matrix(y_true, y_pred, labels=np.arange(classes))
    return {
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "confusion": [[int(count) for count in row] for row in confusion],
    }


def measure_tflite(
    path: str | os.PathLike,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    latency_runs: int = 100,
    warmup_runs: int = 10,
    num_threads: int = 1,
) -> TFLiteMetrics:
    """Measure a ``.tflite`` file under LiteRT.

    Accuracy runs every test sample through `TFLiteRunner` one at a time
    (quantized inputs and outputs are handled); the macro precision, recall
    and F1 and the confusion matrix come from the same predictions. Latency feeds the first test
    sample, runs ``warmup_runs`` untimed ``invoke()`` calls, then times
    ``latency_runs`` calls one by one with ``time.perf_counter_ns`` and takes
    the median, which shrugs off the odd scheduler hiccup.

    Args:
        path: The ``.tflite`` file.
        x_test: Real-valued test inputs, shape ``(n, *input_shape)``.
        y_test: Integer class labels, shape ``(n,)``.
        latency_runs: Timed ``invoke()`` calls; at least 50.
        warmup_runs: Untimed ``invoke()`` calls before timing; at least 0.
        num_threads: Interpreter threads; 1 (the default) gives comparable,
            stable figures.

    Returns:
        The `TFLiteMetrics`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        TypeError: If ``path`` is not a str or os.PathLike.
        ValueError: If ``latency_runs`` < 50, ``warmup_runs`` < 0,
            ``num_threads`` < 1, ``x_test`` is not numeric or not finite,
            ``y_test`` is not class indices (>= 0, and below the model's number
            of outputs), ``x_test`` and ``y_test`` differ in length or do not
            fit the model, or the file is empty or not a ``.tflite`` model.

    """
    latency_runs = check_positive_int("latency_runs", latency_runs, minimum=MIN_LATENCY_RUNS)
    warmup_runs = check_positive_int("warmup_runs", warmup_runs, minimum=0)
    num_threads = check_positive_int("num_threads", num_threads)
    x_test, y_test = _check_test_set(x_test, y_test)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"Received: path of type {type(path).__name__}; expected a str or os.PathLike."
        )
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"Received: path={str(path)!r}; expected the path of an existing .tflite file."
        )

    data = Path(path).read_bytes()
    try:
        runner = TFLiteRunner(data, num_threads=num_threads)
    except ValueError as error:  # name the file, not "model of N bytes"
        raise ValueError(
            str(error).replace("Received: model of", f"Received: path={str(path)!r} of", 1)
        ) from error
    _check_labels_fit(y_test, runner)
    outputs = runner.predict(x_test, batch_size=1)
    predicted = top1_labels(outputs)
    accuracy = float(np.mean(predicted == y_test))
    quality = classification_figures(y_test, predicted, _output_classes(outputs, y_test))

    runner.set_input(x_test[:1])
    invoke = runner.interpreter.invoke
    for _ in range(warmup_runs):
        invoke()
    timings_ns = []
    clock = time.perf_counter_ns
    for _ in range(latency_runs):
        start = clock()
        invoke()
        timings_ns.append(clock() - start)

    return TFLiteMetrics(
        size_bytes=len(data),
        gzip_bytes=len(gzip.compress(data, compresslevel=9, mtime=0)),
        accuracy=accuracy,
        latency_us_median=statistics.median(timings_ns) / 1000.0,
        latency_runs=latency_runs,
        **quality,
    )
