"""Data sets from files: ``.npz`` archives and folders of images."""

from __future__ import annotations

import numbers
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_autoopt._backend import keras
from keras_autoopt.data._arrays import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VAL_FRACTION,
    assemble,
    check_fractions,
    check_seed,
)
from keras_autoopt.data._dataset import Dataset
from keras_autoopt.data._errors import DatasetError, DatasetNotFoundError

COLOR_MODES = ("grayscale", "rgb", "rgba")
#: Image files read from a folder (those of ``image_dataset_from_directory``).
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
#: Largest image read by default: 4096 x 4096 pixels. A larger (or forged) header
#: would make the decoder allocate gigabytes (a "decompression bomb").
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
_IMAGE_FORMATS = ("BMP", "GIF", "JPEG", "MPO", "PNG")

_PAIRS = ("train", "val", "test")
_NPZ_EXPECTED = (
    "'x' and 'y' (split for you), or 'x_train' and 'y_train' with optional "
    "'x_val'/'y_val' and 'x_test'/'y_test' (missing splits are carved from the training "
    "data); optionally 'class_names'"
)


def _check_path(path: object, arg: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise DatasetError(
            f"Received: {arg} of type {type(path).__name__}; expected a str or os.PathLike."
        )
    return Path(os.fspath(path))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    # np.load reads a file that is not a zip archive as a .npy or as a pickle, and
    # then blames pickle: say what the file is not instead.
    if not zipfile.is_zipfile(path):
        raise DatasetError(
            f"Received: path={str(path)!r}, which is not a .npz archive (not a zip file); "
            "expected a file written by numpy.savez or numpy.savez_compressed."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DatasetError(
            f"Received: path={str(path)!r}, which cannot be read as a .npz archive ({err}); "
            "expected a file written by numpy.savez or numpy.savez_compressed."
        ) from err
    except ValueError as err:  # object arrays need pickle, which is not allowed
        raise DatasetError(
            f"Received: path={str(path)!r} holding arrays that cannot be read ({err}). "
            "Object arrays are refused (they would need pickle); expected numeric arrays "
            "and class names as a string array."
        ) from err


def from_npz(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> Dataset:
    """Load a `Dataset` from a NumPy ``.npz`` archive.

    The archive holds either ``x`` and ``y``, split as in `from_arrays`, or
    ``x_train`` and ``y_train`` with optional ``x_val``/``y_val`` and
    ``x_test``/``y_test``; a missing split is carved from the training data
    (stratified, from ``seed``; ``val_fraction``/``test_fraction`` of the
    training data when only one split is missing). An optional
    ``class_names`` key holds a string array. Arrays are converted as in
    `from_arrays` (``x`` cast to ``float32``, not rescaled). The file is
    read with ``allow_pickle=False``.

    Args:
        path: Path of the ``.npz`` file.
        name: Name of the data set; by default the file name without suffix.
        num_classes: Number of classes; by default the largest label + 1.
        class_names: Names of the classes; overrides a ``class_names`` key.
        seed: Seed of the split.
        val_fraction: Fraction held out for validation when there is no
            ``x_val``/``y_val``.
        test_fraction: Fraction held out for testing when there is no
            ``x_test``/``y_test``.

    Returns:
        The `Dataset`.

    Raises:
        DatasetError: If the file does not exist (then also a
            ``FileNotFoundError``), cannot be read, lacks the expected keys
            or holds unexpected ones, or if the arrays or arguments are
            invalid (see `from_arrays`).

    """
    seed = check_seed(seed)
    check_fractions(val_fraction, test_fraction)
    path = _check_path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"Received: path={str(path)!r}, which is not an existing file; expected the path "
            "of a .npz archive."
        )
    arrays = _read_npz(path)
    keys = set(arrays)

    if "x" in keys or "y" in keys:
        allowed = {"x", "y", "class_names"}
        required = {"x", "y"}
    else:
        allowed = {f"{p}_{s}" for p in "xy" for s in _PAIRS} | {"class_names"}
        required = {"x_train", "y_train"}
    found = ", ".join(repr(k) for k in sorted(keys)) or "none"
    if not required <= keys or not keys <= allowed:
        missing = sorted(required - keys)
        extra = sorted(keys - allowed)
        problem = "; ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"unexpected {extra}" if extra else "",
            )
            if part
        )
        raise DatasetError(
            f"Received: {str(path)!r} with keys [{found}] ({problem}); expected {_NPZ_EXPECTED}."
        )
    for split in ("val", "test"):
        if (f"x_{split}" in keys) != (f"y_{split}" in keys):
            raise DatasetError(
                f"Received: {str(path)!r} with keys [{found}]; expected 'x_{split}' and "
                f"'y_{split}' together, or neither."
            )

    if class_names is None and "class_names" in arrays:
        stored = arrays["class_names"]
        if stored.dtype.kind not in "US" or stored.ndim != 1:
            raise DatasetError(
                f"Received: 'class_names' in {str(path)!r} with dtype {stored.dtype} and "
                f"shape {stored.shape}; expected a 1-D array of strings."
            )
        class_names = tuple(
            s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in stored.tolist()
        )

    if "x" in arrays:
        train, val, test = (arrays["x"], arrays["y"]), None, None
    else:
        train = (arrays["x_train"], arrays["y_train"])
        val = (arrays["x_val"], arrays["y_val"]) if "x_val" in arrays else None
        test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    return assemble(
        path.stem if name is None else name,
        train,
        val,
        test,
        num_classes=num_classes,
        class_names=class_names,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        source=repr(str(path)),
    )


def _check_image_size(image_size: object) -> tuple[int, int]:
    ok = (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
            for v in image_size
        )
    )
    if not ok:
        raise DatasetError(
            f"Received: image_size={image_size!r}; expected two positive integers (height, width)."
        )
    return int(image_size[0]), int(image_size[1])


def _image_files(path: Path) -> list[Path]:
    """The image files ``image_dataset_from_directory`` reads, in class sub-folders."""
    files = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        for root, _dirs, names in sorted(os.walk(folder)):
            files += [Path(root) / n for n in sorted(names)
                      if n.lower().endswith(IMAGE_SUFFIXES)]
    return files


def check_image_files(path: Path, max_image_pixels: int) -> int:
    """Decode every image of the folder once, refusing corrupt and oversized ones.

    The size is read from the image's header before any pixel is decoded,
    so an oversized image costs nothing; every other image is decoded in
    full, so a truncated or corrupt file is named here rather than failing
    later, nameless, inside TensorFlow.

    Returns:
        The number of images checked.

    Raises:
        DatasetError: Naming the first file that is not a readable jpeg / png /
            bmp / gif image, or that has more than ``max_image_pixels`` pixels.
    """
    import warnings

    from PIL import Image

    files = _image_files(path)
    for file in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(file) as image:
                    width, height = image.size
                    if width * height > max_image_pixels:
                        raise DatasetError(
                            f"Received: image {str(file)!r} of {width}x{height} pixels "
                            f"({width * height:,}); expected at most max_image_pixels="
                            f"{max_image_pixels:,} (resize it, or raise max_image_pixels if "
                            "you trust the file).")
                    if image.format not in _IMAGE_FORMATS:
                        raise DatasetError(
                            f"Received: image {str(file)!r} holding a {image.format} image; "
                            "expected jpeg, png, bmp or gif (convert or remove it).")
                    image.load()
        except DatasetError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) \
                as err:
            raise DatasetError(
                f"Cannot read image {str(file)!r}: {type(err).__name__}: {err}. Expected a "
                "valid jpeg, png, bmp or gif file (replace or remove it).") from None
    return len(files)


def from_image_folder(
    path: str | os.PathLike,
    *,
    image_size: tuple[int, int] = (32, 32),
    color_mode: str = "rgb",
    name: str | None = None,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Dataset:
    """Load a `Dataset` from a folder with one sub-folder of images per class.

    ::

        path/
            cat/  a.png b.jpg ...
            dog/  c.png ...

    Images are read with ``tf.keras.utils.image_dataset_from_directory``
    (labels from the sub-folder names, in alphabetical order, kept as
    ``class_names``; jpeg, png, bmp and gif), resized to ``image_size``,
    read whole into memory as NumPy, scaled to [0, 1] by dividing by 255, and
    split as in `from_arrays`. Files directly in ``path`` are ignored. Every
    image is first checked (`check_image_files`): a corrupt file, one of
    another format, or one of more than ``max_image_pixels`` pixels (read
    from its header, before decoding) is refused by name.

    Args:
        path: The folder.
        image_size: ``(height, width)`` every image is resized to.
        color_mode: ``"grayscale"`` (1 channel), ``"rgb"`` (3) or ``"rgba"`` (4).
        name: Name of the data set; by default the folder name.
        seed: Seed of the split.
        val_fraction: Fraction of the images for validation, in (0, 1).
        test_fraction: Fraction of the images for testing, in (0, 1).
        max_image_pixels: Largest number of pixels (width x height) of an
            image; a larger one is refused before it is decoded.

    Returns:
        The `Dataset`, ``x`` of shape ``(N, height, width, channels)``.

    Raises:
        DatasetError: If ``image_size``, ``color_mode``, ``seed`` or a
            fraction is invalid (checked before reading anything); if
            ``path`` is not an existing folder (then also a
            ``FileNotFoundError``); if it holds no images, fewer than two
            class sub-folders, or too few images per class; naming the file
            of a corrupt or oversized image.

    """
    image_size = _check_image_size(image_size)
    if color_mode not in COLOR_MODES:
        raise DatasetError(f"Received: color_mode={color_mode!r}; expected one of {COLOR_MODES}.")
    seed = check_seed(seed)
    check_fractions(val_fraction, test_fraction)
    if isinstance(max_image_pixels, bool) or not isinstance(max_image_pixels, numbers.Integral) \
            or max_image_pixels < 1:
        raise DatasetError(
            f"Received: max_image_pixels={max_image_pixels!r}; expected a positive integer.")
    path = _check_path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"Received: path={str(path)!r}, which is not an existing folder; expected a "
            "folder with one sub-folder of images per class."
        )
    check_image_files(path, int(max_image_pixels))
    try:
        images = keras.utils.image_dataset_from_directory(
            str(path),
            labels="inferred",
            label_mode="int",
            color_mode=color_mode,
            image_size=image_size,
            batch_size=64,
            shuffle=False,
        )
    except ValueError as err:  # no images, or images outside class sub-folders only
        raise DatasetError(
            f"Cannot read images from {str(path)!r}: {err} Expected one sub-folder of "
            "images per class."
        ) from err
    class_names = tuple(images.class_names)
    if len(class_names) < 2:
        raise DatasetError(
            f"Received: folder {str(path)!r} with {len(class_names)} class sub-folder(s) "
            f"{list(class_names)}; expected at least 2, one per class."
        )
    xs, ys = [], []
    try:
        for x_batch, y_batch in images.as_numpy_iterator():
            xs.append(x_batch)
            ys.append(y_batch)
    except Exception as err:  # TensorFlow names no file: say which folder, and why
        raise DatasetError(
            f"Cannot decode an image of {str(path)!r}: {type(err).__name__}: "
            f"{' '.join(str(err).split())[:300]}. Expected valid jpeg, png, bmp or gif "
            "files.") from None
    x = np.concatenate(xs).astype(np.float32) / np.float32(255.0)
    y = np.concatenate(ys).astype(np.int64)
    counts = np.bincount(y, minlength=len(class_names))
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DatasetError(
            f"Received: folder {str(path)!r} whose class sub-folder(s) {empty} hold no "
            "images; expected images in every class sub-folder (remove empty ones)."
        )
    return assemble(
        path.resolve().name if name is None else name,
        (x, y),
        num_classes=len(class_names),
        class_names=class_names,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        source=repr(str(path)),
    )
