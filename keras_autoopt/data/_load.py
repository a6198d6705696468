"""`load_dataset`: one entry point for built-in data sets, ``.npz`` files and folders."""

from __future__ import annotations

import os
from pathlib import Path

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


def _load_digits(seed: int, val_fraction: float, test_fraction: float) -> Dataset:
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


# name -> loader(seed, val_fraction, test_fraction); every one ships with a
# dependency, so none downloads anything.
_BUILTIN = {"digits": _load_digits}


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    **kwargs,
) -> Dataset:
    """Load a data set by name or path, with a fixed stratified train/val/test split.

    * ``"digits"``: scikit-learn's bundled handwritten digits (1,797 real
      8x8 grey images, 10 classes, no download); ``x`` is scaled to [0, 1]
      (pixel / 16) with shape ``(N, 8, 8, 1)``; ``class_names`` are
      ``"0"`` .. ``"9"``. With the default fractions the split is
      1,257 / 270 / 270.
    * a path ending in ``.npz``: see `from_npz`.
    * an existing folder: see `from_image_folder`.

    Built-in names take precedence over folders of the same name. The same
    ``seed`` always gives the same split.

    Args:
        name_or_path: A built-in name, or the path of a ``.npz`` file or an
            image folder.
        seed: Seed of the split.
        val_fraction: Fraction of the samples for validation, in (0, 1).
        test_fraction: Fraction of the samples for testing, in (0, 1).
        **kwargs: Passed to `from_npz` or `from_image_folder`
            (e.g. ``image_size``, ``color_mode``, ``class_names``). Built-in
            data sets take none.

    Returns:
        The `Dataset`.

    Raises:
        DatasetError: If ``name_or_path`` is none of the above, if keyword
            arguments are given for a built-in data set, or if ``seed`` or a
            fraction is invalid (all checked before loading), or as raised
            by the loader.

    """
    seed = check_seed(seed)
    check_fractions(val_fraction, test_fraction)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise DatasetError(
            f"Received: name_or_path of type {type(name_or_path).__name__}; expected a "
            "data set name (str) or a path."
        )
    text = os.fspath(name_or_path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if isinstance(name_or_path, str) and text in _BUILTIN:
        if kwargs:
            raise DatasetError(
                f"Received: unexpected keyword arguments {sorted(kwargs)} for the built-in "
                f"data set {text!r}; expected only seed, val_fraction and test_fraction."
            )
        return _BUILTIN[text](seed, val_fraction, test_fraction)
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
