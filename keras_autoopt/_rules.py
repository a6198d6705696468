"""The compression rules and defaults shared by the Python API, the YAML config and the CLI.

Each rule is written here once, with its default; `CompressionSpace`,
`auto_compress`, the ``compress:`` / ``compression_space:`` sections of the
run configuration and ``keras-autoopt compress`` call it. TF-free (numpy and
the standard library only), so a YAML error never imports TensorFlow.

Zero, decided once: in a **search space** (`CompressionSpace`) a sparsity of
0 or a cluster count of 0 is a choice, "do not prune / do not cluster", so
the search can compare compressing with not compressing (``allow_zero=True``).
A list of **targets** that are each applied (`auto_compress`'s candidate
sparsities and cluster counts, one `PruningStep` target) holds only real
compressions: a 0 target would measure nothing (``allow_zero=False``); there
an empty cluster list skips clustering.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_autoopt._checks import check_choices
from keras_autoopt._defaults import EXPORT_MODES

#: Largest validation accuracy drop `auto_compress` allows by default (one point).
DEFAULT_MAX_ACCURACY_DROP = 0.01
#: `auto_compress`'s candidate per-layer sparsities (targets: no 0).
DEFAULT_SPARSITIES = (0.5, 0.75, 0.9, 0.95, 0.98, 0.99)
#: `auto_compress`'s cluster counts, fewest first (targets: no 0).
DEFAULT_CLUSTER_COUNTS = (8, 16, 32)
#: `CompressionSpace`'s sparsity choices (0: no pruning).
DEFAULT_SPACE_SPARSITIES = (0.0, 0.5, 0.75, 0.9)
#: `CompressionSpace`'s cluster-count choices (0: no clustering).
DEFAULT_SPACE_CLUSTERS = (0, 16, 32)
#: `CompressionSpace`'s quantization choices, largest file first.
DEFAULT_QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
#: `auto_compress`'s candidate shares of each group's channels structured pruning removes.
DEFAULT_CHANNEL_RATIOS = (0.25, 0.5, 0.75, 0.875)
#: Channel importance criteria of structured pruning (see `channel_importance`).
CHANNEL_CRITERIA = ("l1", "l2", "bn_scale", "taylor")
#: What `auto_compress` can minimize among the stages within budget.
MINIMIZE = ("flash", "gzip", "latency", "ram", "macs")
#: Pruning schedules a `CompressionSpace` may sample, and its default choice.
PRUNING_SCHEDULES = ("polynomial", "constant")
DEFAULT_PRUNING_SCHEDULES = ("polynomial",)

_REAL = (int, float, np.integer, np.floating)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_sparsities(name: str, value: Any, *, allow_zero: bool) -> tuple[float, ...]:
    """Return ``value`` as a non-empty tuple of sparsities (order kept).

    Args:
        name: Argument name used in the message.
        value: The value received.
        allow_zero: True for a search space, where 0 is the choice "no
            pruning": fractions in [0, 1). False for pruning targets: (0, 1).

    Returns:
        The sparsities as floats.

    Raises:
        ValueError: If the list is empty or holds anything else.
    """
    ok = _is_list(value) and len(value) > 0 and all(
        isinstance(v, _REAL) and not isinstance(v, bool) and math.isfinite(v)
        and (0 <= v < 1 if allow_zero else 0 < v < 1) for v in value)
    if not ok:
        interval = "[0, 1) (0 means no pruning)" if allow_zero else "(0, 1)"
        raise ValueError(
            f"Received: {name}={value!r}; expected a non-empty list of fractions in {interval}.")
    return tuple(float(v) for v in value)


def check_cluster_count(name: str, value: Any) -> int:
    """Return one cluster count, an integer >= 2 (fewer is not a clustering)."""
    if not _is_int(value) or value < 2:
        raise ValueError(f"Received: {name}={value!r}; expected an integer >= 2.")
    return int(value)


def check_cluster_counts(name: str, value: Any, *, allow_zero: bool) -> tuple[int, ...]:
    """Return ``value`` as a tuple of cluster counts (order kept).

    Args:
        name: Argument name used in the message.
        value: The value received.
        allow_zero: True for a search space: a non-empty list, each 0 (the
            choice "no clustering") or >= 2. False for counts that are each
            tried: each >= 2, an empty list skipping clustering.

    Returns:
        The counts as ints.

    Raises:
        ValueError: If the value is not such a list.
    """
    ok = _is_list(value) and all(_is_int(v) and (v >= 2 or allow_zero and v == 0)
                                 for v in value)
    if allow_zero and ok and not value:
        ok = False
    if not ok:
        expected = ("a non-empty list of integers, each 0 (no clustering) or >= 2" if allow_zero
                    else "a list of integers >= 2 (empty to skip clustering)")
        raise ValueError(f"Received: {name}={value!r}; expected {expected}.")
    return tuple(int(v) for v in value)


def check_max_accuracy_drop(name: str, value: Any) -> float:
    """Return an accuracy budget: a fraction in [0, 1) (0.01 is one point)."""
    if isinstance(value, bool) or not isinstance(value, _REAL) or not 0 <= value < 1:
        raise ValueError(
            f"Received: {name}={value!r}; expected a fraction in [0, 1), e.g. 0.01 for one point.")
    return float(value)


def check_quantizations(name: str, value: Any) -> tuple[str, ...]:
    """Return a non-empty tuple of unique export modes (`EXPORT_MODES`)."""
    return check_choices(name, value, allowed=EXPORT_MODES)


def check_channel_ratios(name: str, value: Any) -> tuple[float, ...]:
    """Return ``value`` as sorted, distinct channel ratios in (0, 1); empty is allowed.

    Args:
        name: Argument name used in the message.
        value: The value received.

    Raises:
        ValueError: Naming ``name`` and ``value`` for anything else.
    """
    expected = (f"Received: {name}={value!r}; expected a list of distinct fractions in "
                "(0, 1) (an empty list skips structured pruning).")
    if not _is_list(value):
        raise ValueError(expected)
    ratios = []
    for item in value:
        if not isinstance(item, _REAL) or isinstance(item, bool) or \
                not (0.0 < float(item) < 1.0):
            raise ValueError(expected)
        ratios.append(float(item))
    if len(set(ratios)) != len(ratios):
        raise ValueError(expected)
    return tuple(sorted(ratios))
