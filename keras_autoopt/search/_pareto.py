"""Pareto dominance, Pareto fronts and the dominated hypervolume, in NumPy.

Every function takes ``directions``: one of `DIRECTIONS` per objective
(``"min"`` when smaller is better, ``"max"`` when larger is better). They
work internally on minimization problems, negating the maximized objectives.

This module imports NumPy only (no TensorFlow / Keras), like an Oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DIRECTIONS = ("min", "max")


def _signs(directions: Any, num_objectives: int | None = None) -> np.ndarray:
    """Return +1 for each ``"min"`` and -1 for each ``"max"`` direction.

    Args:
        directions: The ``directions`` argument received.
        num_objectives: If given, the number of directions expected.

    Returns:
        A float array of signs: multiplying values by it turns every
        objective into one to minimize.

    Raises:
        ValueError: If ``directions`` is not a non-empty list of ``"min"`` /
            ``"max"``, or has the wrong length.

    """
    if isinstance(directions, (str, bytes)) or not isinstance(directions, Sequence):
        raise ValueError(
            f"Received: directions={directions!r}; expected a list with 'min' or 'max' "
            "for each objective."
        )
    if not directions or any(
        not isinstance(d, str) or d not in DIRECTIONS for d in directions
    ):
        raise ValueError(
            f"Received: directions={directions!r}; expected 'min' or 'max' for each objective."
        )
    if num_objectives is not None and len(directions) != num_objectives:
        raise ValueError(
            f"Received: directions={directions!r}; expected {num_objectives} directions, "
            f"one per objective (the points have {num_objectives} objectives)."
        )
    return np.array([1.0 if d == "min" else -1.0 for d in directions])


def _float_array(name: str, value: Any, expected: str) -> np.ndarray:
    """Return ``value`` as a float64 array; if it is not numeric, raise naming ``expected``."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"Received: {name}={value!r}; expected {expected}.") from None


def _as_vector(name: str, value: Any, num_objectives: int) -> np.ndarray:
    """Return ``value`` as a float vector of ``num_objectives`` values.

    Args:
        name: Argument name used in the message.
        value: The value received.
        num_objectives: The length expected.

    Returns:
        A 1-D float64 array.

    Raises:
        ValueError: If ``value`` is not numeric or has another shape.

    """
    vector = _float_array(name, value, f"{num_objectives} numbers, one per objective")
    if vector.shape != (num_objectives,):
        raise ValueError(
            f"Received: {name}={value!r}; expected {num_objectives} numbers, "
            f"one per objective (got shape {vector.shape})."
        )
    return vector


def _as_points(points: Any, directions: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check ``points`` and ``directions`` and return them as minimization values.

    Args:
        points: An ``(n, k)`` array-like, or an empty sequence.
        directions: ``k`` directions.

    Returns:
        ``(values, signs)``: the ``(n, k)`` points with maximized objectives
        negated (``(0, k)`` for an empty input) and the signs used.

    Raises:
        ValueError: If ``points`` is not numeric or not 2-D, or as `_signs`.

    """
    array = _float_array(
        "points", points,
        "an (n, k) array of numbers, one row per point and one column per objective",
    )
    if array.size == 0 and array.ndim == 1:  # [] or (): no point, k unknown
        signs = _signs(directions)
        return np.empty((0, len(signs))), signs
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(
            f"Received: points of shape {array.shape}; expected an (n, k) array "
            "of numbers, one row per point and one column per objective."
        )
    signs = _signs(directions, array.shape[1])
    return array * signs, signs


def _non_dominated(values: np.ndarray) -> np.ndarray:
    """Return the mask of rows of ``values`` no other row dominates (minimization).

    Rows equal to each other do not dominate each other, so ties are all kept.
    Every row must be finite.

    Args:
        values: An ``(n, k)`` float array, all objectives minimized.

    Returns:
        A boolean mask of length ``n``.

    """
    keep = np.ones(len(values), dtype=bool)
    for i, row in enumerate(values):
        dominators = np.all(values <= row, axis=1) & np.any(values < row, axis=1)
        keep[i] = not dominators.any()
    return keep


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Return whether ``a`` Pareto-dominates ``b``.

    ``a`` dominates ``b`` when it is at least as good as ``b`` in every
    objective and strictly better in at least one. Equal points do not
    dominate each other. A NaN value compares as neither better nor worse,
    so a point holding a NaN neither dominates nor is dominated; infinities
    compare as usual.

    Args:
        a: One value per objective.
        b: One value per objective.
        directions: ``"min"`` or ``"max"`` for each objective.

    Returns:
        ``True`` if ``a`` dominates ``b``.

    Raises:
        ValueError: If ``directions`` holds something other than ``"min"`` /
            ``"max"``, or ``a`` / ``b`` are not one number per direction.

    """
    signs = _signs(directions)
    a_values = _as_vector("a", a, len(signs)) * signs
    b_values = _as_vector("b", b, len(signs)) * signs
    return bool(np.all(a_values <= b_values) and np.any(a_values < b_values))


def pareto_front(points: Any, directions: Sequence[str]) -> list[int]:
    """Return the indices of the non-dominated points, in ascending order.

    A point is on the front when no other point dominates it (see
    `dominates`). Identical points do not dominate each other, so tied
    points are all on the front. A row holding a NaN or an infinity is never
    on the front and takes no part in the comparison (it dominates nothing):
    a failed measurement cannot win nor hide a real result.

    The cost is ``O(n**2 * k)``, fine for thousands of trials.

    Args:
        points: An ``(n, k)`` array-like of objective values, one row per
            point (e.g. per trial); an empty sequence gives an empty front.
        directions: ``"min"`` or ``"max"`` for each of the ``k`` objectives.

    Returns:
        The row indices of the front, ascending.

    Raises:
        ValueError: If ``points`` is not a 2-D numeric array-like, or
            ``directions`` is not one ``"min"`` / ``"max"`` per column.

    """
    values, _ = _as_points(points, directions)
    finite = np.flatnonzero(np.all(np.isfinite(values), axis=1))
    keep = _non_dominated(values[finite])
    return [int(i) for i in finite[keep]]


def hypervolume(points: Any, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Return the exact hypervolume the points dominate, bounded by ``reference``.

    The hypervolume is the measure (area in 2-D, volume in 3-D, ...) of the
    set of objective vectors that are dominated by at least one point and
    better than ``reference``. Larger is better; it only grows when a point
    improves the front, so it summarizes a whole search in one number.

    Pick ``reference`` worse than every point you want to count (for
    example the largest acceptable size and the smallest acceptable
    accuracy): a point that is not strictly better than ``reference`` in
    every objective contributes nothing, and neither does a row holding a
    NaN or an infinity. Dominated points never change the result.

    Maximized objectives are negated (and so is their ``reference`` value)
    to work on a minimization problem. Two objectives use an exact
    ``O(n log n)`` sweep; three or more use exact recursive slicing along
    the last objective (HSO), whose cost grows like ``n ** (k - 1)``:
    measured, 300 points take about 0.01 s in 3-D, 1,000 points 0.2 s;
    200 points 0.6 s in 4-D; 50 points 0.6 s in 5-D.

    Args:
        points: An ``(n, k)`` array-like of objective values; an empty
            sequence gives 0.
        directions: ``"min"`` or ``"max"`` for each of the ``k`` objectives.
        reference: ``k`` finite numbers, in the objectives' own units and
            directions (not negated).

    Returns:
        The hypervolume as a Python float (0.0 when no point is better than
        ``reference``).

    Raises:
        ValueError: If ``points`` is not a 2-D numeric array-like,
            ``directions`` is not one ``"min"`` / ``"max"`` per column, or
            ``reference`` is not ``k`` finite numbers.

    """
    values, signs = _as_points(points, directions)
    ref = _as_vector("reference", reference, len(signs))
    if not np.all(np.isfinite(ref)):
        raise ValueError(
            f"Received: reference={reference!r}; expected {len(signs)} finite numbers."
        )
    ref = ref * signs
    inside = np.all(np.isfinite(values), axis=1) & np.all(values < ref, axis=1)
    return float(_hypervolume(values[inside], ref))


def _hypervolume(values: np.ndarray, ref: np.ndarray) -> float:
    """Return the hypervolume of finite points all strictly below ``ref`` (minimization)."""
    num_points, num_objectives = values.shape
    if num_points == 0:
        return 0.0
    if num_objectives == 1:
        return float(ref[0] - values[:, 0].min())
    if num_objectives == 2:
        return _hypervolume_2d(values, ref)
    # Slice along the last objective: between two consecutive values of it,
    # the dominated region is the (k-1)-D hypervolume of the points seen so far.
    values = values[np.argsort(values[:, -1], kind="stable")]
    bounds = np.append(values[:, -1], ref[-1])
    total = 0.0
    for i in range(num_points):
        depth = bounds[i + 1] - bounds[i]
        if depth > 0:
            projected = values[: i + 1, :-1]
            if num_objectives > 3:  # the 2-D sweep ignores dominated points itself
                projected = projected[_non_dominated(projected)]
            total += depth * _hypervolume(projected, ref[:-1])
    return total


def _hypervolume_2d(values: np.ndarray, ref: np.ndarray) -> float:
    """Return the 2-D dominated area: a sweep in ascending first objective."""
    order = np.lexsort((values[:, 1], values[:, 0]))
    x, y = values[order, 0], values[order, 1]
    # Each point adds the strip between its y and the lowest y seen before it,
    # from its x to the reference.
    lowest_before = np.concatenate(([ref[1]], np.minimum.accumulate(y)[:-1]))
    heights = np.maximum(lowest_before - y, 0.0)
    return float(np.sum((ref[0] - x) * heights))


def default_reference(points: np.ndarray, directions: Sequence[str]) -> list[float]:
    """The worst value of each objective, moved 10 % of its range further out.

    Args:
        points: ``(n, k)`` objective values.
        directions: ``"min"`` / ``"max"`` per objective.

    Returns:
        A reference point every given point improves on.
    """
    points = np.asarray(points, dtype=float)
    reference = []
    for column, direction in zip(points.T, directions, strict=True):
        low, high = float(np.min(column)), float(np.max(column))
        margin = 0.1 * (high - low) or 0.1 * max(abs(high), 1e-12)
        reference.append(high + margin if direction == "min" else low - margin)
    return reference
