"""From NumPy arrays to a `Dataset`: checks, label conversion, stratified split.

Every loader of `keras_autoopt.data` ends here: it reads its source into
arrays and calls `assemble`, which checks them, carves the missing splits
from the training data and builds the `Dataset`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from keras_autoopt.data._dataset import Dataset, check_class_names
from keras_autoopt.data._errors import DatasetError

DEFAULT_VAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15

# Tolerance for float round-off in ``1 / fraction`` (1 / 0.2 = 5.000000000000001).
_EPS = 1e-9


def check_seed(seed: object) -> int:
    """Check a split seed.

    Args:
        seed: The value to check.

    Returns:
        The seed as a Python int.

    Raises:
        DatasetError: If ``seed`` is not an integer in ``[0, 2**32)``.

    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not (0 <= seed < 2**32):
        raise DatasetError(f"Received: seed={seed!r}; expected an integer in [0, 2**32).")
    return int(seed)


def check_fractions(val_fraction: object, test_fraction: object) -> tuple[float, float]:
    """Check the validation and test fractions.

    Args:
        val_fraction: Fraction of the data for the validation split.
        test_fraction: Fraction of the data for the test split.

    Returns:
        ``(val_fraction, test_fraction)`` as floats.

    Raises:
        DatasetError: If either is not a number in (0, 1), or if they leave
            no training data.

    """
    for arg, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not 0.0 < float(value) < 1.0
        ):
            raise DatasetError(f"Received: {arg}={value!r}; expected a float in (0, 1).")
    val, test = float(val_fraction), float(test_fraction)
    if val + test >= 1.0 - _EPS:
        raise DatasetError(
            f"Received: val_fraction={val} and test_fraction={test}; expected "
            "val_fraction + test_fraction < 1, so that some data is left for training."
        )
    return val, test


def _check_x(x: object, where: str) -> np.ndarray:
    if isinstance(x, (str, bytes)) or x is None:
        raise DatasetError(
            f"Received: {where} of type {type(x).__name__}; expected a numeric array."
        )
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged nested lists, for example
        raise DatasetError(
            f"Received: {where} that cannot be made into an array ({err}); expected a "
            "numeric array of shape (N, *input_shape)."
        ) from err
    if arr.dtype.kind not in "biuf":
        raise DatasetError(
            f"Received: {where} with dtype {arr.dtype}; expected a numeric (bool, integer "
            "or float) array."
        )
    if arr.ndim < 2:
        raise DatasetError(
            f"Received: {where} with shape {arr.shape}; expected at least 2-D, "
            "(N, *input_shape): (N, features) or (N, height, width, channels)."
        )
    if len(arr) == 0:
        raise DatasetError(f"Received: {where} with 0 samples; expected at least one sample.")
    with np.errstate(over="ignore", invalid="ignore"):  # reported just below
        x32 = arr.astype(np.float32)
    finite = np.isfinite(x32)
    bad = int(np.size(x32) - np.count_nonzero(finite))
    if bad:
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise DatasetError(
            f"Received: {where} with {bad} NaN or infinite values (as float32), the first "
            f"{where}[{', '.join(map(str, first))}]={x32[first]}; expected finite values."
        )
    return x32


def _check_y(y: object, where: str) -> tuple[np.ndarray, int | None]:
    """Return integer labels and, for one-hot input, the number of columns."""
    if isinstance(y, (str, bytes)) or y is None:
        raise DatasetError(
            f"Received: {where} of type {type(y).__name__}; expected an array of labels."
        )
    arr = np.asarray(y)
    if arr.dtype.kind not in "iuf":
        raise DatasetError(
            f"Received: {where} with dtype {arr.dtype}; expected integer class indices or "
            "one-hot rows (map string labels to 0..K-1 first and pass class_names)."
        )
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]  # a column of labels, as in CIFAR's (N, 1)
    if arr.ndim == 2:
        width = arr.shape[1]
        is_binary = np.all((arr == 0) | (arr == 1))
        if not is_binary or not np.all(arr.sum(axis=1) == 1):
            raise DatasetError(
                f"Received: {where} with shape {arr.shape} that is not one-hot; expected "
                "1-D class indices, or 2-D rows of 0s with a single 1."
            )
        return np.argmax(arr, axis=1).astype(np.int64), width
    if arr.ndim != 1:
        raise DatasetError(
            f"Received: {where} with shape {arr.shape}; expected 1-D class indices (N,) or "
            "one-hot rows (N, num_classes)."
        )
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            fractional = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(fractional):
            first = int(np.flatnonzero(fractional)[0])
            raise DatasetError(
                f"Received: {where} with non-integer float values, the first "
                f"{where}[{first}]={arr[first]}; expected integer class indices."
            )
    labels = arr.astype(np.int64)
    if len(labels) and labels.min() < 0:
        raise DatasetError(
            f"Received: {where} containing label {int(labels.min())}; expected class indices >= 0."
        )
    return labels, None


def _prepare(x: object, y: object, split: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    suffix = "" if split == "" else f"_{split}"
    x32 = _check_x(x, f"x{suffix}")
    labels, width = _check_y(y, f"y{suffix}")
    if len(x32) != len(labels):
        raise DatasetError(
            f"Received: x{suffix} with {len(x32)} samples and y{suffix} with {len(labels)}; "
            "expected the same number of samples."
        )
    return x32, labels, width


def _describe_fractions(fractions: dict[str, float]) -> str:
    return " and ".join(f"{name}={value:g}" for name, value in fractions.items())


def _class_label(label: int, class_names: tuple[str, ...] | None) -> str:
    if class_names is not None and label < len(class_names):
        return f"class {label} ({class_names[label]!r})"
    return f"class {label}"


def stratified_split(
    x: np.ndarray,
    y: np.ndarray,
    holdouts: dict[str, float],
    *,
    seed: int,
    class_names: tuple[str, ...] | None = None,
    source: str = "the data",
) -> tuple[tuple[np.ndarray, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """Split ``(x, y)`` into a training part and stratified hold-out parts.

    The hold-outs are carved one after the other with
    ``sklearn.model_selection.train_test_split(..., stratify=..., random_state=seed)``,
    each of size ``fraction * len(y)``, so one seed always gives one split.

    Every class needs at least ``ceil(1 / f)`` samples, where ``f`` is the
    smallest of the hold-out fractions and the training fraction that
    remains, so that it can appear in every part.

    Args:
        x: Inputs, ``(N, ...)``.
        y: Integer labels, ``(N,)``.
        holdouts: Argument name -> fraction of ``N``, in carving order, e.g.
            ``{"test_fraction": 0.15, "val_fraction": 0.15}``.
        seed: Random seed of the split.
        class_names: Names used in error messages.
        source: What ``(x, y)`` is, for error messages.

    Returns:
        ``((x_train, y_train), [(x_h, y_h) for each hold-out])``.

    Raises:
        DatasetError: If a class has too few samples for the split.

    """
    train_fraction = 1.0 - sum(holdouts.values())
    need = math.ceil(1.0 / min(train_fraction, *holdouts.values()) - _EPS)
    labels, counts = np.unique(y, return_counts=True)
    short = [(int(c), int(n)) for c, n in zip(labels, counts, strict=True) if n < need]
    if short:
        shown = ", ".join(
            f"{_class_label(c, class_names)} has {n} sample{'s' if n != 1 else ''}"
            for c, n in short[:5]
        )
        more = f" (and {len(short) - 5} more classes)" if len(short) > 5 else ""
        raise DatasetError(
            f"Too few samples per class in {source} for a stratified split with "
            f"{_describe_fractions(holdouts)}: {shown}{more}; expected at least {need} "
            "samples per class, so that every class can appear in every split. Add samples, "
            "drop or merge small classes, or change the fractions."
        )
    parts = []
    x_rest, y_rest = x, y
    remaining = 1.0
    for arg, fraction in holdouts.items():
        try:
            x_rest, x_part, y_rest, y_part = train_test_split(
                x_rest,
                y_rest,
                test_size=fraction / remaining,
                stratify=y_rest,
                random_state=seed,
                shuffle=True,
            )
        except ValueError as err:  # rare round-off cases the count check lets through
            raise DatasetError(
                f"Cannot make a stratified split of {source} with {arg}={fraction:g}: {err}"
            ) from err
        remaining -= fraction
        parts.append((x_part, y_part))
    return (x_rest, y_rest), parts


def assemble(
    name: str,
    train: tuple[object, object],
    val: tuple[object, object] | None = None,
    test: tuple[object, object] | None = None,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    source: str = "the data",
) -> Dataset:
    """Check arrays, carve the missing splits from ``train``, build a `Dataset`.

    Without ``val`` and ``test``, ``test_fraction`` then ``val_fraction`` of
    the training data (fractions of the whole) are held out. With only one
    of them missing, that fraction of the training data is held out for it.

    Args:
        name: Name of the data set.
        train: ``(x, y)`` training arrays.
        val: Optional ``(x, y)`` validation arrays.
        test: Optional ``(x, y)`` test arrays.
        num_classes: Number of classes; by default the largest label + 1 (or
            the width of one-hot labels).
        class_names: Optional names, one per class.
        seed: Seed of the split.
        val_fraction: Fraction held out for validation when ``val`` is missing.
        test_fraction: Fraction held out for testing when ``test`` is missing.
        source: What the arrays are, for error messages.

    Returns:
        The `Dataset`.

    Raises:
        DatasetError: If the arrays or the arguments are invalid.

    """
    seed = check_seed(seed)
    val_fraction, test_fraction = check_fractions(val_fraction, test_fraction)
    if not isinstance(name, str) or not name:
        raise DatasetError(f"Received: name={name!r}; expected a non-empty string.")
    if num_classes is not None and (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 2
    ):
        raise DatasetError(
            f"Received: num_classes={num_classes!r}; expected None or an integer >= 2."
        )

    given = {"train": train, "val": val, "test": test}
    only_train = val is None and test is None
    prepared: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    widths = {}
    for split, pair in given.items():
        if pair is None:
            continue
        x, y = pair
        x32, labels, width = _prepare(x, y, "" if only_train else split)
        prepared[split] = (x32, labels)
        if width is not None:
            widths[split] = width

    if len(set(widths.values())) > 1:
        raise DatasetError(
            f"Received: one-hot labels of different widths {widths}; expected the same "
            "number of classes in every split."
        )
    width = next(iter(widths.values()), None)
    max_label = max(int(labels.max()) for _, labels in prepared.values())
    if num_classes is None:
        num_classes = width if width is not None else max_label + 1
    else:
        num_classes = int(num_classes)
        if width is not None and width != num_classes:
            raise DatasetError(
                f"Received: num_classes={num_classes} with one-hot labels of width {width}; "
                "expected them to agree."
            )
        if max_label >= num_classes:
            raise DatasetError(
                f"Received: num_classes={num_classes} but labels up to {max_label}; expected "
                f"num_classes >= {max_label + 1} (labels are class indices in "
                "[0, num_classes))."
            )
    class_names = check_class_names(class_names, num_classes)

    x_train, y_train = prepared["train"]
    present = np.unique(y_train)
    if len(present) < 2:
        raise DatasetError(
            f"Received: training labels with {len(present)} distinct class"
            f"{'es' if len(present) != 1 else ''} ({present.tolist()}); expected at least 2 "
            "classes."
        )
    sample_shape = x_train.shape[1:]
    for split, (x32, _) in prepared.items():
        if x32.shape[1:] != sample_shape:
            raise DatasetError(
                f"Received: x_{split} with sample shape {tuple(x32.shape[1:])}; expected "
                f"{tuple(sample_shape)}, the sample shape of x_train."
            )

    holdouts = {}
    if "test" not in prepared:
        holdouts["test_fraction"] = test_fraction
    if "val" not in prepared:
        holdouts["val_fraction"] = val_fraction
    if holdouts:
        train_part, parts = stratified_split(
            x_train, y_train, holdouts, seed=seed, class_names=class_names, source=source
        )
        prepared["train"] = train_part
        for arg, part in zip(holdouts, parts, strict=True):
            prepared[arg.split("_")[0]] = part

    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(prepared["train"][0]),
        y_train=np.ascontiguousarray(prepared["train"][1]),
        x_val=np.ascontiguousarray(prepared["val"][0]),
        y_val=np.ascontiguousarray(prepared["val"][1]),
        x_test=np.ascontiguousarray(prepared["test"][0]),
        y_test=np.ascontiguousarray(prepared["test"][1]),
        num_classes=num_classes,
        class_names=class_names,
    )


def from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str = "arrays",
    num_classes: int | None = None,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    class_names: Sequence[str] | None = None,
) -> Dataset:
    """Make a `Dataset` from NumPy arrays, with a stratified train/val/test split.

    ``test_fraction`` of the samples go to the test split and
    ``val_fraction`` to the validation split, stratified by class, with
    ``sklearn.model_selection.train_test_split``; the same ``seed`` always
    gives the same split.

    ``x`` is cast to ``float32`` as is: integer images (``uint8`` in
    [0, 255]) are **not** rescaled; divide by 255 yourself if your model
    expects [0, 1].

    Args:
        x: Inputs of shape ``(N, *input_shape)``, at least 2-D: images
            ``(N, height, width, channels)`` or tabular ``(N, features)``.
            Any numeric dtype; all values must be finite.
        y: Labels: class indices ``(N,)`` (or ``(N, 1)``), or one-hot rows
            ``(N, num_classes)``.
        name: Name of the data set.
        num_classes: Number of classes; by default the largest label + 1 (or
            the width of one-hot labels). Must be at least that.
        seed: Seed of the split.
        val_fraction: Fraction of the samples for validation, in (0, 1).
        test_fraction: Fraction of the samples for testing, in (0, 1).
        class_names: Optional names, one per class index.

    Returns:
        The `Dataset`.

    Raises:
        DatasetError: If ``x`` is not numeric, not at least 2-D, not finite,
            or not as long as ``y``; if ``y`` is neither class indices nor
            one-hot; if there are fewer than 2 classes or a class has too
            few samples to appear in every split; if ``num_classes``,
            ``class_names``, ``seed`` or a fraction is invalid.

    """
    seed = check_seed(seed)
    check_fractions(val_fraction, test_fraction)
    return assemble(
        name,
        (x, y),
        num_classes=num_classes,
        class_names=class_names,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        source=f"{name!r}",
    )
