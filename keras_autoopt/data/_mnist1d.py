"""MNIST-1D (Greydanus & Kobak, ICML 2024), generated offline by the ``mnist1d`` package.

The published data set is what ``mnist1d.data.make_dataset(get_dataset_args())``
returns: 5,000 signals of 40 steps (500 per digit), shuffled, standardised
with the mean and standard deviation of all 5,000 signals, and split
4,000 / 1,000 into train / test. The generator is deterministic (NumPy's
legacy global RNG, seeded from ``args.seed``), so nothing is downloaded:
``mnist1d.data.get_dataset`` (which fetches a pickle from GitHub and
writes one to the working folder) is never called.

`load_mnist1d` generates the raw (unstandardised) signals with the package's
own ``get_templates`` and ``transform``, in the order ``make_dataset`` uses
them, so that it can also standardise a larger, freshly generated test set
with the training set's statistics. The tests check the result against
``make_dataset`` itself, exactly.
"""

from __future__ import annotations

import numbers
import random
import threading
from importlib.metadata import version
from typing import Any

import numpy as np

from keras_autoopt.data._arrays import DEFAULT_VAL_FRACTION, check_seed, stratified_split
from keras_autoopt.data._dataset import Dataset
from keras_autoopt.data._errors import DatasetError

NAME = "mnist1d"
#: The seed of the published data set (``get_dataset_args()["seed"]``).
PUBLISHED_SEED = 42
#: Upper bound of ``test_samples`` (about 4 min and 160 MB of float32 to generate).
MAX_TEST_SAMPLES = 1_000_000
#: The keyword options `load_mnist1d` takes besides seed and val_fraction.
OPTIONS = ("test_samples", "generator_seed")

_NUM_CLASSES = 10
# make_dataset seeds and draws from the global `random` and `np.random`
# generators; the lock keeps concurrent loads from interleaving their draws.
_RNG_LOCK = threading.Lock()
# Mixed into the generator seed to derive the seed of a generated test set.
_TEST_SEED_TAG = 0x7E57


def _check_int(arg: str, value: object, low: int, high: int, extra: str = "") -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not low <= value <= high
    ):
        raise DatasetError(
            f"Received: {arg}={value!r}; expected an integer in [{low:,}, {high:,}]{extra}."
        )
    return int(value)


def check_options(
    val_fraction: object, test_samples: object = None, generator_seed: object = PUBLISHED_SEED
) -> tuple[float, int | None, int]:
    """Check the MNIST-1D options before any work.

    Args:
        val_fraction: Fraction of the training set held out for validation.
        test_samples: ``None`` or the size of a generated test set.
        generator_seed: Seed of the generator.

    Returns:
        ``(val_fraction, test_samples, generator_seed)``, as float and ints.

    Raises:
        DatasetError: If an option is invalid; the message names it.

    """
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not 0.0 < float(val_fraction) < 1.0
    ):
        raise DatasetError(
            f"Received: val_fraction={val_fraction!r}; expected a float in (0, 1), the "
            f"fraction of the {NAME} training set held out for validation."
        )
    if test_samples is not None:
        test_samples = _check_int(
            "test_samples",
            test_samples,
            10,
            MAX_TEST_SAMPLES,
            " and a multiple of 10 (the generator makes equal classes)",
        )
        if test_samples % _NUM_CLASSES:
            raise DatasetError(
                f"Received: test_samples={test_samples}; expected a multiple of 10 (the "
                "generator makes the same number of signals for each of the 10 digits)."
            )
    generator_seed = _check_int("generator_seed", generator_seed, 0, 2**32 - 1)
    return float(val_fraction), test_samples, generator_seed


def derive_test_seed(generator_seed: int) -> int:
    """The generator seed of the generated test set that goes with ``generator_seed``.

    Derived with `numpy.random.SeedSequence`, so that it is unrelated to
    nearby seeds (seed ``s``'s test set is not seed ``s + 1``'s training
    set), and never equal to ``generator_seed``.

    Args:
        generator_seed: The seed of the training set.

    Returns:
        A seed in ``[0, 2**32)`` other than ``generator_seed``.

    """
    seed = int(np.random.SeedSequence([generator_seed, _TEST_SEED_TAG]).generate_state(1)[0])
    return seed if seed != generator_seed else (seed + 1) % 2**32


def _generate_raw(args: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)``: ``make_dataset(args)``'s signals before standardisation.

    The loop of ``mnist1d.data.make_dataset`` (0.0.2), draw for draw
    (``args.shuffle_seq`` is False), under a lock and with the global RNG
    states of `random` and `numpy.random` restored afterwards: loading
    leaves the caller's random streams as they were.
    """
    from mnist1d.data import get_templates
    from mnist1d.transform import transform
    from mnist1d.utils import set_seed

    with _RNG_LOCK:
        saved = random.getstate(), np.random.get_state()
        try:
            set_seed(args.seed)
            templates = get_templates()
            xs, ys = [], []
            per_class = args.num_samples // len(templates["y"])
            for label in range(len(templates["y"])):
                for _ in range(per_class):
                    x, _t = transform(templates["x"][label], templates["t"], args)
                    xs.append(x)
                    ys.append(templates["y"][label])
            order = np.random.permutation(len(ys))  # make_dataset's batch shuffle
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
    return np.stack(xs)[order], np.stack(ys)[order].astype(np.int64)


def _shared_rows(a: np.ndarray, b: np.ndarray) -> int:
    """The number of rows of ``a`` that are byte-identical to a row of ``b``."""
    seen = {row.tobytes() for row in np.ascontiguousarray(b).reshape(len(b), -1)}
    return sum(row.tobytes() in seen for row in np.ascontiguousarray(a).reshape(len(a), -1))


def _as_input(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)[..., np.newaxis]


def load_mnist1d(
    *,
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_samples: int | None = None,
    generator_seed: int = PUBLISHED_SEED,
) -> Dataset:
    """Generate MNIST-1D: the published train/test split, validation carved from train.

    ``x`` has shape ``(N, 40, 1)`` (40 steps, one channel), ``float32``,
    standardised as the generator does it (mean 0, standard deviation 1 over
    the 5,000 generated signals; values about -5.5 .. 4.5), which is what
    the paper's models are trained on: no further scaling. ``y`` holds the
    digits 0..9 (``class_names`` ``"0"`` .. ``"9"``).

    * train / test: the generator's own 4,000 / 1,000 split of
      ``make_dataset(get_dataset_args())`` (seed 42), exactly (up to the
      ``float32`` rounding); ``val_fraction`` of the 4,000 is held out,
      stratified, for validation (600 with the default, leaving 3,400).
    * ``test_samples=N``: the test set is instead ``N`` signals (``N / 10``
      per digit) generated with the same arguments but the generator seed
      `derive_test_seed` ``(generator_seed)``, standardised with the training
      set's mean and standard deviation. A different seed gives an
      independent stream of draws (each signal has 120 Gaussian noise
      values); on top of that every test signal is checked to share no
      identical row with the 4,000 training signals.
    * ``generator_seed=S``: a fresh data set, ``make_dataset`` with
      ``args.seed = S``.

    The generator arguments, the package version, the standardisation and
    the splits are recorded in ``Dataset.provenance`` (and ``summary()``).
    Generating the 5,000 signals takes about 1 s on one CPU core, and
    ``test_samples`` adds about 0.2 ms per signal (100,000 in about 20 s);
    nothing is cached on disk.

    Args:
        seed: Seed of the validation split.
        val_fraction: Fraction of the 4,000 training signals held out for
            validation, in (0, 1).
        test_samples: ``None`` for the published test set, or the size of
            a generated test set: a multiple of 10 in [10, 1,000,000].
        generator_seed: Seed of the generator, in [0, 2**32); 42 is the
            published data set.

    Returns:
        The `Dataset` (name ``"mnist1d"``).

    Raises:
        DatasetError: If an argument is invalid (checked before generating),
            or, in theory, if a generated test signal equals a training one.

    """
    seed = check_seed(seed)
    val_fraction, test_samples, generator_seed = check_options(
        val_fraction, test_samples, generator_seed
    )
    from mnist1d.data import get_dataset_args
    from mnist1d.utils import ObjectView

    arg_dict = get_dataset_args(as_dict=True)
    arg_dict.pop("url", None)  # only get_dataset's download uses it; never fetched here
    arg_dict["seed"] = generator_seed
    args = ObjectView(dict(arg_dict))
    raw_x, y = _generate_raw(args)
    mean, std = raw_x.mean(), raw_x.std()
    x = (raw_x - mean) / std  # as make_dataset does, in float64
    split_ix = int(len(y) * args.train_split)
    x_train, y_train = x[:split_ix], y[:split_ix]
    test: dict[str, Any] = {"source": "published", "n": len(y) - split_ix}
    if test_samples is None:
        x_test, y_test = x[split_ix:], y[split_ix:]
    else:
        test_seed = derive_test_seed(generator_seed)
        raw_test, y_test = _generate_raw(
            ObjectView({**arg_dict, "num_samples": test_samples, "seed": test_seed})
        )
        x_test = (raw_test - mean) / std
        shared = _shared_rows(_as_input(x_test), _as_input(x_train))
        if shared:
            raise DatasetError(
                f"Generated {shared} test signals identical to training signals with "
                f"generator_seed={generator_seed} (test seed {test_seed}); expected none. "
                "Choose another generator_seed."
            )
        test = {
            "source": "generated",
            "n": test_samples,
            "seed": test_seed,
            "standardization": "the training set's (above)",
            "shared_rows_with_train": 0,
        }

    class_names = tuple(str(d) for d in range(_NUM_CLASSES))
    (x_fit, y_fit), [(x_val, y_val)] = stratified_split(
        _as_input(x_train),
        y_train,
        {"val_fraction": val_fraction},
        seed=seed,
        class_names=class_names,
        source=f"the {NAME} training set",
    )
    provenance = {
        "generator": "mnist1d.data.make_dataset",
        "mnist1d_version": version("mnist1d"),
        "args": arg_dict,
        "standardization": {
            "mean": float(mean),
            "std": float(std),
            "over": f"all {len(y)} signals made with args, as make_dataset does",
        },
        "train": {
            "n": split_ix,
            "val_fraction": val_fraction,
            "val_seed": seed,
            "stratified": True,
        },
        "test": test,
    }
    return Dataset(
        name=NAME,
        x_train=np.ascontiguousarray(x_fit),
        y_train=np.ascontiguousarray(y_fit),
        x_val=np.ascontiguousarray(x_val),
        y_val=np.ascontiguousarray(y_val),
        x_test=_as_input(x_test),
        y_test=np.ascontiguousarray(y_test),
        num_classes=_NUM_CLASSES,
        class_names=class_names,
        provenance=provenance,
    )
