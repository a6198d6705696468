"""Data sets from ``tf.data.Dataset`` pipelines, read whole into NumPy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_autoopt._backend import tf
from keras_autoopt.data._arrays import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    assemble,
    check_fractions,
    check_seed,
)
from keras_autoopt.data._dataset import Dataset
from keras_autoopt.data._errors import DatasetError

# Batch size used to read unbatched pipelines; only affects speed.
_READ_BATCH = 256


def _check_pipeline(ds: object, arg: str) -> tuple[tf.TensorSpec, tf.TensorSpec]:
    if not isinstance(ds, tf.data.Dataset):
        raise DatasetError(
            f"Received: {arg} of type {type(ds).__module__}.{type(ds).__qualname__}; "
            "expected a tf.data.Dataset yielding (x, y) pairs."
        )
    spec = ds.element_spec
    if (
        not isinstance(spec, tuple)
        or len(spec) != 2
        or not all(type(s) is tf.TensorSpec for s in spec)
    ):
        raise DatasetError(
            f"Received: {arg} with element_spec={spec}; expected (x, y) pairs of dense "
            "tensors (no dicts, sample weights, ragged or sparse tensors)."
        )
    cardinality = int(ds.cardinality())
    if cardinality == int(tf.data.INFINITE_CARDINALITY):
        raise DatasetError(
            f"Received: {arg} that repeats forever (cardinality is infinite); expected a "
            "finite tf.data.Dataset (remove .repeat())."
        )
    return spec


def _is_batched(spec: tuple[tf.TensorSpec, tf.TensorSpec], arg: str) -> bool:
    """Tell a batched ``(x, y)`` pipeline from an unbatched one by its ranks.

    An unbatched element has a scalar label (rank 0) or a one-hot row
    (rank 1); a batched one has labels of rank 1 or 2 whose first
    dimension is the batch dimension, shared with ``x``.
    """
    x_spec, y_spec = spec
    y_rank, x_rank = y_spec.shape.rank, x_spec.shape.rank
    if y_rank is None or x_rank is None:
        raise DatasetError(
            f"Received: {arg} with element_spec={spec} of unknown rank; expected known "
            "ranks (set shapes with tf.ensure_shape or pass batched=...)."
        )
    if y_rank == 0:
        return False
    if y_rank == 2:
        return True
    if y_rank != 1:
        raise DatasetError(
            f"Received: {arg} with labels of shape {y_spec.shape}; expected class indices "
            "or one-hot rows, batched or not."
        )
    if x_rank == 0:
        return False
    x_first, y_first = x_spec.shape[0], y_spec.shape[0]
    if x_first is None and y_first is None:
        return True  # both share an unknown batch dimension
    if x_first != y_first:
        return False  # an unbatched one-hot row next to a sample
    raise DatasetError(
        f"Received: {arg} with element_spec={spec}, which could be a batch of {y_first} "
        f"class indices or one sample with a one-hot label of {y_first} classes; pass "
        "batched=True or batched=False."
    )


def _read(ds: tf.data.Dataset, batched: bool, arg: str) -> tuple[np.ndarray, np.ndarray]:
    if not batched:
        ds = ds.batch(_READ_BATCH)
    xs, ys = [], []
    for x, y in ds.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DatasetError(f"Received: {arg} with no elements; expected a non-empty dataset.")
    try:
        return np.concatenate(xs), np.concatenate(ys)
    except ValueError as err:
        raise DatasetError(
            f"Received: {arg} whose elements have different shapes ({err}); expected every "
            "sample to have the same shape."
        ) from err


def from_tf_dataset(
    train: tf.data.Dataset,
    *,
    val: tf.data.Dataset | None = None,
    test: tf.data.Dataset | None = None,
    name: str = "tf.data",
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    batched: bool | None = None,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> Dataset:
    """Make a `Dataset` from ``tf.data.Dataset`` pipelines of ``(x, y)`` pairs.

    Each pipeline is read once, whole, into NumPy arrays: the package targets
    edge-scale data that fits in memory (a fixed split needs it there).
    Pipelines may be batched or not; this is read from ``element_spec``: a
    scalar label means unbatched, labels of rank 2 mean batched one-hot, and
    labels of rank 1 are a batch when their first dimension is ``x``'s (both
    unknown) and a one-hot row otherwise. When that cannot be told (a fixed
    batch size equal to ``x``'s first dimension), pass ``batched``. Labels
    are class indices or one-hot rows; values are converted as in
    `from_arrays` (``x`` cast to ``float32``, not rescaled).

    A missing ``val`` or ``test`` is carved from ``train``, stratified, from
    ``seed``: with both missing, ``val_fraction`` and ``test_fraction`` of
    ``train``'s samples; with one missing, that fraction of them.

    Args:
        train: Training pipeline of ``(x, y)``. Must be finite.
        val: Optional validation pipeline.
        test: Optional test pipeline.
        name: Name of the data set.
        num_classes: Number of classes; by default the largest label + 1 (or
            the width of one-hot labels).
        class_names: Optional names, one per class.
        batched: Whether the pipelines yield batches; ``None`` detects it.
        seed: Seed of the split.
        val_fraction: Fraction held out for validation when ``val`` is None.
        test_fraction: Fraction held out for testing when ``test`` is None.

    Returns:
        The `Dataset`.

    Raises:
        DatasetError: If a pipeline is not a ``tf.data.Dataset``, does not
            yield ``(x, y)`` pairs of dense tensors, is infinite or empty,
            if batching cannot be detected, or if the data or arguments are
            invalid (see `from_arrays`).

    """
    seed = check_seed(seed)
    check_fractions(val_fraction, test_fraction)
    if batched is not None and not isinstance(batched, bool):
        raise DatasetError(f"Received: batched={batched!r}; expected None, True or False.")
    pipelines = {"train": train, "val": val, "test": test}
    specs = {
        arg: _check_pipeline(ds, arg)
        for arg, ds in pipelines.items()
        if ds is not None or arg == "train"
    }
    arrays = {}
    for arg, spec in specs.items():
        is_batched = _is_batched(spec, arg) if batched is None else batched
        arrays[arg] = _read(pipelines[arg], is_batched, arg)
    return assemble(
        name,
        arrays["train"],
        arrays.get("val"),
        arrays.get("test"),
        num_classes=num_classes,
        class_names=class_names,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        source="train",
    )
