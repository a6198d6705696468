"""`load_dataset`: one entry point for built-in data sets, ``.npz`` files and folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from keras_autoopt.data._arrays import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    assemble,
    check_fractions,
    check_seed,
)
from keras_autoopt.data._dataset import Dataset
from keras_autoopt.data._errors import DatasetError
from keras_autoopt.data._files import from_image_folder, from_npz
from keras_autoopt.data._mnist1d import OPTIONS as MNIST1D_OPTIONS
from keras_autoopt.data._mnist1d import load_mnist1d


def _load_digits(*, seed: int, val_fraction: float, test_fraction: float) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    y = bunch.target.astype(np.int64)
    return assemble(
        "digits",
        (x, y),
        num_classes=10,
        class_names=tuple(str(d) for d in range(10)),
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        source="'digits'",
    )


class _Builtin(NamedTuple):
    """A built-in data set: its loader and the keyword arguments it takes."""

    #: ``loader(*, seed, val_fraction, test_fraction, **options)``, without
    #: ``test_fraction`` when ``fixed_test`` is set.
    loader: Callable[..., Dataset]
    #: Names of the keyword options besides seed and the fractions.
    options: tuple[str, ...] = ()
    #: Why ``test_fraction`` is refused, for a data set with a fixed test set.
    fixed_test: str | None = None


# Every one ships with a dependency or generates its data: none downloads anything.
_BUILTIN = {
    "digits": _Builtin(_load_digits),
    "mnist1d": _Builtin(
        load_mnist1d,
        MNIST1D_OPTIONS,
        fixed_test="mnist1d keeps its published 4,000 / 1,000 train/test split (pass "
        "test_samples=N for a larger generated test set)",
    ),
}


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float | None = None,
    **kwargs: object,
) -> Dataset:
    """Load a data set by name or path, with a fixed stratified train/val/test split.

    * ``"digits"``: scikit-learn's bundled handwritten digits (1,797 real
      8x8 grey images, 10 classes, no download); ``x`` is scaled to [0, 1]
      (pixel / 16) with shape ``(N, 8, 8, 1)``; ``class_names`` are
      ``"0"`` .. ``"9"``. With the default fractions the split is
      1,257 / 270 / 270.
    * ``"mnist1d"``: MNIST-1D (Greydanus & Kobak, ICML 2024), 10 digits as
      1-D signals of shape ``(40, 1)``, generated offline by the ``mnist1d``
      package (about 1 s): the published 4,000 / 1,000 train/test split,
      with ``val_fraction`` of the 4,000 carved out, stratified, for
      validation (3,400 / 600 / 1,000 by default). ``test_fraction`` is
      refused. Options: ``test_samples=N`` (a larger generated test set)
      and ``generator_seed=S`` (a fresh data set); see `load_mnist1d`. The
      generator arguments are in ``Dataset.provenance`` and ``summary()``.
    * a path ending in ``.npz``: see `from_npz`.
    * an existing folder: see `from_image_folder`.

    Built-in names take precedence over folders of the same name. The same
    ``seed`` always gives the same split.

    Args:
        name_or_path: A built-in name, or the path of a ``.npz`` file or an
            image folder.
        seed: Seed of the split.
        val_fraction: Fraction of the samples for validation, in (0, 1)
            (for ``"mnist1d"``: of its training set).
        test_fraction: Fraction of the samples for testing, in (0, 1);
            ``None`` means 0.15. Refused for ``"mnist1d"``, whose test set
            is fixed.
        **kwargs: Passed to `from_npz` or `from_image_folder`
            (e.g. ``image_size``, ``color_mode``, ``class_names``), or the
            options of ``"mnist1d"`` (``test_samples``, ``generator_seed``).
            ``"digits"`` takes none.

    Returns:
        The `Dataset`.

    Raises:
        DatasetError: If ``name_or_path`` is none of the above, if keyword
            arguments a built-in data set does not take are given, or if
            ``seed``, a fraction or an option is invalid (all checked before
            loading), or as raised by the loader.

    """
    seed = check_seed(seed)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise DatasetError(
            f"Received: name_or_path of type {type(name_or_path).__name__}; expected a "
            "data set name (str) or a path."
        )
    text = os.fspath(name_or_path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if isinstance(name_or_path, str) and text in _BUILTIN:
        builtin = _BUILTIN[text]
        accepted = ["seed", "val_fraction"]
        accepted += [] if builtin.fixed_test else ["test_fraction"]
        accepted += builtin.options
        unexpected = sorted(set(kwargs) - set(builtin.options))
        if unexpected:
            raise DatasetError(
                f"Received: unexpected keyword arguments {unexpected} for the built-in "
                f"data set {text!r}; expected only {', '.join(accepted[:-1])} and "
                f"{accepted[-1]}."
            )
        if builtin.fixed_test is not None:
            if test_fraction is not None:
                raise DatasetError(
                    f"Received: test_fraction={test_fraction!r} for the built-in data set "
                    f"{text!r}; expected no test_fraction: {builtin.fixed_test}."
                )
            return builtin.loader(seed=seed, val_fraction=val_fraction, **kwargs)
        test_fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
        check_fractions(val_fraction, test_fraction)
        return builtin.loader(
            seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, **kwargs
        )
    if test_fraction is None:
        test_fraction = DEFAULT_TEST_FRACTION
    check_fractions(val_fraction, test_fraction)
    split = {"seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction}
    if text.lower().endswith(".npz"):
        return from_npz(text, **split, **kwargs)
    if Path(text).is_dir():
        return from_image_folder(text, **split, **kwargs)
    hint = "" if Path(text).exists() else " (no such file or folder)"
    raise DatasetError(
        f"Received: name_or_path={text!r}{hint}; expected a built-in data set name "
        f"({', '.join(repr(n) for n in _BUILTIN)}), the path of a .npz file, or an existing "
        "folder with one sub-folder of images per class."
    )
