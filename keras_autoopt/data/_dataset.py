"""`Dataset`: a fixed train/validation/test split held in NumPy arrays."""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_autoopt.data._errors import DatasetError

SPLITS = ("train", "val", "test")


def check_class_names(
    class_names: object, num_classes: int, *, arg: str = "class_names"
) -> tuple[str, ...] | None:
    """Check class names and return them as a tuple of strings.

    Args:
        class_names: ``None`` or a sequence of ``num_classes`` distinct strings.
        num_classes: The number of classes they must name.
        arg: The argument name to use in error messages.

    Returns:
        ``None`` or the names as a tuple.

    Raises:
        DatasetError: If ``class_names`` is not a sequence of ``num_classes``
            distinct strings.

    """
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not isinstance(
        class_names, (list, tuple, np.ndarray)
    ):
        raise DatasetError(
            f"Received: {arg}={class_names!r}; expected None or a list/tuple of "
            f"{num_classes} strings."
        )
    names = tuple(class_names)
    if not all(isinstance(n, str) for n in names):
        raise DatasetError(f"Received: {arg}={names!r}; expected every class name to be a string.")
    if len(names) != num_classes:
        raise DatasetError(
            f"Received: {arg} with {len(names)} names; expected num_classes={num_classes} "
            "names, one per class index."
        )
    if len(set(names)) != len(names):
        raise DatasetError(f"Received: {arg}={names!r}; expected distinct class names.")
    return tuple(str(n) for n in names)  # plain str, not numpy.str_


def check_provenance(provenance: object) -> dict[str, Any] | None:
    """Check a provenance record and return a plain, detached copy of it.

    Args:
        provenance: ``None`` or a mapping with string keys whose values are
            JSON values (str, int, float, bool, None, lists and mappings).

    Returns:
        ``None`` or a new ``dict`` (a JSON round trip: tuples become lists),
        so that later changes to the argument do not reach the `Dataset`.

    Raises:
        DatasetError: If ``provenance`` is not such a mapping.

    """
    if provenance is None:
        return None
    if not isinstance(provenance, Mapping) or not all(isinstance(k, str) for k in provenance):
        raise DatasetError(
            f"Received: provenance={provenance!r}; expected None or a mapping with string keys."
        )
    try:
        return json.loads(json.dumps(provenance, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise DatasetError(
            f"Received: provenance that is not JSON-serialisable ({err}); expected str, int, "
            "finite float, bool, None, lists and mappings with string keys."
        ) from err


def _ndarray(attr: str, value: Any) -> np.ndarray:
    """Return ``value``, the array of the field ``attr``, if it is a NumPy array; else raise."""
    if not isinstance(value, np.ndarray):
        raise DatasetError(
            f"Received: {attr} of type {type(value).__name__}; expected a numpy.ndarray."
        )
    return value


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A classification data set with a fixed train/validation/test split.

    Invariants, checked in ``__post_init__`` (a `DatasetError` otherwise):

    * every ``x_*`` is a ``float32`` array of shape ``(N, *input_shape)``
      with ``N >= 1``, the same ``input_shape`` in the three splits
      (images are NHWC; tabular data is ``(N, features)``), and only finite
      values;
    * every ``y_*`` is a 1-D ``int64`` array of class indices in
      ``[0, num_classes)``, as long as its ``x_*``;
    * ``num_classes >= 2``; ``class_names``, when given, has one distinct
      string per class;
    * ``provenance``, when given, is a JSON-serialisable mapping (kept as a
      detached copy).

    The arrays are stored as read-only views: a `Dataset` cannot be changed
    in place, so a split made from a seed stays that split. (The arrays you
    passed in stay writable; do not modify them afterwards.) Two datasets
    compare equal only if they are the same object.

    Build one with `load_dataset`, `from_arrays`, `from_npz`,
    `from_image_folder` or `from_tf_dataset`; they convert and split the
    data. The constructor only checks, it never converts.

    Attributes:
        name: A short name for reports.
        x_train: Training inputs.
        y_train: Training labels.
        x_val: Validation inputs (used for model selection).
        y_val: Validation labels.
        x_test: Test inputs (held out for the final report).
        y_test: Test labels.
        num_classes: Number of classes.
        class_names: Optional names of the classes, indexed by label.
        provenance: Optional record of how the data was made (e.g. the
            generator and its arguments), reported by `summary`.

    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...] | None = None
    provenance: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DatasetError(f"Received: name={self.name!r}; expected a non-empty string.")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, numbers.Integral):
            raise DatasetError(
                f"Received: num_classes={self.num_classes!r}; expected an integer >= 2."
            )
        if self.num_classes < 2:
            raise DatasetError(
                f"Received: num_classes={self.num_classes}; expected an integer >= 2."
            )
        object.__setattr__(self, "num_classes", int(self.num_classes))
        object.__setattr__(
            self, "class_names", check_class_names(self.class_names, self.num_classes)
        )
        object.__setattr__(self, "provenance", check_provenance(self.provenance))

        input_shape = None
        for split in SPLITS:
            x = self._check_x(split)
            y = self._check_y(split)
            if len(x) != len(y):
                raise DatasetError(
                    f"Received: x_{split} with {len(x)} samples and y_{split} with "
                    f"{len(y)}; expected the same number of samples."
                )
            if input_shape is None:
                input_shape = x.shape[1:]
            elif x.shape[1:] != input_shape:
                raise DatasetError(
                    f"Received: x_{split} with sample shape {tuple(x.shape[1:])}; expected "
                    f"{tuple(input_shape)}, the sample shape of x_train."
                )
            for attr, arr in ((f"x_{split}", x), (f"y_{split}", y)):
                view = arr.view()
                view.setflags(write=False)
                object.__setattr__(self, attr, view)

    def _check_x(self, split: str) -> np.ndarray:
        attr = f"x_{split}"
        x = _ndarray(attr, getattr(self, attr))
        if x.dtype != np.float32:
            raise DatasetError(
                f"Received: {attr} with dtype {x.dtype}; expected float32 "
                "(from_arrays converts for you)."
            )
        if x.ndim < 2:
            raise DatasetError(
                f"Received: {attr} with shape {x.shape}; expected (N, *input_shape), at least 2-D."
            )
        if len(x) == 0:
            raise DatasetError(f"Received: {attr} with 0 samples; expected a non-empty split.")
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        if bad:
            raise DatasetError(
                f"Received: {attr} with {bad} NaN or infinite values; expected finite values."
            )
        return x

    def _check_y(self, split: str) -> np.ndarray:
        attr = f"y_{split}"
        y = _ndarray(attr, getattr(self, attr))
        if y.dtype != np.int64 or y.ndim != 1:
            raise DatasetError(
                f"Received: {attr} with dtype {y.dtype} and shape {y.shape}; expected a 1-D "
                "int64 array of class indices (from_arrays converts for you)."
            )
        if len(y) == 0:
            raise DatasetError(f"Received: {attr} with 0 samples; expected a non-empty split.")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= self.num_classes:
            value = low if low < 0 else high
            raise DatasetError(
                f"Received: {attr} containing label {value}; expected class indices in "
                f"[0, {self.num_classes}) for num_classes={self.num_classes}."
            )
        return y

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, without the batch dimension."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def summary(self) -> dict:
        """Describe the data set in a JSON-serialisable dict.

        Returns:
            A dict with keys ``name``, ``n_train``, ``n_val``, ``n_test``,
            ``input_shape`` (a list) and ``num_classes``, and ``provenance``
            (a copy) when the data set has one.

        """
        summary = {
            "name": self.name,
            "n_train": len(self.x_train),
            "n_val": len(self.x_val),
            "n_test": len(self.x_test),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
        }
        if self.provenance is not None:
            summary["provenance"] = json.loads(json.dumps(self.provenance))
        return summary

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"Dataset(name={s['name']!r}, n_train={s['n_train']}, n_val={s['n_val']}, "
            f"n_test={s['n_test']}, input_shape={self.input_shape}, "
            f"num_classes={s['num_classes']})"
        )
