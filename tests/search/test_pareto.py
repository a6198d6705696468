import itertools
import re

import numpy as np
import pytest

from keras_autoopt.search._pareto import DIRECTIONS, dominates, hypervolume, pareto_front


def _brute_force_hypervolume(points, reference, cells):
    """Count grid cells dominated by a point (minimization, integer coordinates)."""
    count = 0
    for cell in itertools.product(*(range(c) for c in cells)):
        corner = np.array(cell, dtype=float)  # the cell [corner, corner + 1]
        if np.all(corner + 1 <= reference) and any(np.all(p <= corner) for p in points):
            count += 1
    return count


# dominates


@pytest.mark.parametrize(
    ("a", "b", "directions", "expected"),
    [
        ((1, 1), (2, 2), ("min", "min"), True),
        ((1, 2), (2, 2), ("min", "min"), True),
        ((2, 2), (1, 1), ("min", "min"), False),
        ((1, 3), (3, 1), ("min", "min"), False),  # a trade-off
        ((2, 2), (2, 2), ("min", "min"), False),  # equal points
        ((0.9, 100), (0.8, 200), ("max", "min"), True),
        ((0.8, 100), (0.9, 200), ("max", "min"), False),
        ((0.9, 100), (0.9, 100), ("max", "min"), False),
        ((5,), (3,), ("max",), True),
        ((1, 2, 3), (1, 2, 4), ["min", "min", "min"], True),
        ((1, float("nan")), (2, 2), ("min", "min"), False),
        ((2, 2), (1, float("nan")), ("min", "min"), False),
        ((1, 1), (1, float("inf")), ("min", "min"), True),
    ],
)
def test_dominates(a, b, directions, expected):
    assert dominates(a, b, directions) is expected


def test_dominates_matches_the_definition_on_random_pairs(beats):
    rng = np.random.default_rng(7)
    for _ in range(300):
        k = int(rng.integers(1, 5))
        a, b = rng.integers(0, 3, size=(2, k)).astype(float)  # many ties
        directions = list(rng.choice(["min", "max"], size=k))
        assert dominates(a, b, directions) is beats(a, b, directions), (a, b, directions)


def test_directions_constant():
    assert DIRECTIONS == ("min", "max")


@pytest.mark.parametrize(
    ("directions", "message"),
    [
        (["up"], "Received: directions=['up']; expected 'min' or 'max' for each objective."),
        (["min", "maximize"], "Received: directions=['min', 'maximize']; expected 'min' or 'max'"),
        ([], "Received: directions=[]; expected 'min' or 'max' for each objective."),
        ("min", "Received: directions='min'; expected a list with 'min' or 'max'"),
        (None, "Received: directions=None; expected a list"),
        ([1, 2], "Received: directions=[1, 2]; expected 'min' or 'max'"),
    ],
)
def test_bad_directions_are_named(directions, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        dominates([1], [2], directions)
    with pytest.raises(ValueError, match=re.escape(message)):
        pareto_front([[1.0]], directions)
    with pytest.raises(ValueError, match=re.escape(message)):
        hypervolume([[1.0]], directions, [2.0])


def test_directions_length_must_match_points():
    message = "Received: directions=['min']; expected 2 directions, one per objective"
    with pytest.raises(ValueError, match=re.escape(message)):
        pareto_front([[1, 2]], ["min"])
    with pytest.raises(ValueError, match=re.escape(message)):
        hypervolume([[1, 2]], ["min"], [3, 3])
    with pytest.raises(ValueError, match=re.escape("Received: a=(1, 2); expected 1 numbers")):
        dominates((1, 2), (1,), ["min"])
    with pytest.raises(ValueError, match=re.escape("Received: b=(1,); expected 2 numbers")):
        dominates((1, 2), (1,), ["min", "min"])


# pareto_front


def test_pareto_front_minimize():
    points = [(1, 5), (2, 3), (3, 4), (4, 1), (5, 5), (2, 3.5)]
    # (3, 4) is dominated by (2, 3); (5, 5) by everything; (2, 3.5) by (2, 3).
    assert pareto_front(points, ["min", "min"]) == [0, 1, 3]


def test_pareto_front_maximize_accuracy_minimize_size():
    # (accuracy, size_bytes)
    points = np.array([[0.90, 5000], [0.95, 9000], [0.85, 6000], [0.95, 8000], [0.70, 1000]])
    assert pareto_front(points, ["max", "min"]) == [0, 3, 4]
    # Flipping a direction flips the answer.
    assert pareto_front(points, ["min", "max"]) == [1, 2, 4]
    assert pareto_front(points, ["max", "max"]) == [1]


def test_pareto_front_keeps_ties():
    points = [(1, 2), (2, 1), (1, 2), (3, 3), (1, 2)]
    assert pareto_front(points, ["min", "min"]) == [0, 1, 2, 4]
    assert pareto_front([(1, 1), (1, 1)], ["max", "min"]) == [0, 1]


def test_pareto_front_skips_non_finite_rows():
    points = [
        (float("nan"), 0.0),  # would dominate everything if NaN counted as good
        (1.0, 2.0),
        (-float("inf"), 0.0),
        (2.0, 1.0),
        (3.0, float("inf")),
    ]
    assert pareto_front(points, ["min", "min"]) == [1, 3]
    assert pareto_front([(float("nan"), 1.0)], ["min", "min"]) == []


def test_pareto_front_single_and_empty():
    assert pareto_front([(3.0, 4.0)], ["min", "max"]) == [0]
    assert pareto_front([], ["min", "max"]) == []
    assert pareto_front(np.empty((0, 2)), ["min", "max"]) == []


def test_pareto_front_one_objective_and_three():
    assert pareto_front([[3], [1], [2], [1]], ["min"]) == [1, 3]
    points = [(1, 1, 1), (0, 2, 2), (2, 2, 0), (2, 2, 2), (1, 1, 1)]
    assert pareto_front(points, ["min"] * 3) == [0, 1, 2, 4]


@pytest.mark.parametrize("num_objectives", [1, 2, 3, 4])
@pytest.mark.parametrize("num_points", [1, 2, 8, 40, 120])
def test_pareto_front_matches_brute_force_on_random_points(
    num_points, num_objectives, front_by_enumeration
):
    rng = np.random.default_rng(1000 * num_objectives + num_points)
    directions_rng = np.random.default_rng(num_objectives)
    for trial in range(6):
        if trial < 2:
            # Few distinct integer values: many ties, duplicate rows, equal columns.
            points = rng.integers(0, 4, size=(num_points, num_objectives)).astype(float)
        elif trial < 4:
            points = rng.integers(0, 3 * num_points, size=(num_points, num_objectives))
            points = points.astype(float)
        else:
            # A trade-off: with every objective minimized, all points would be on
            # the front (the last objective falls as the others rise).
            points = rng.integers(0, 6, size=(num_points, num_objectives)).astype(float)
            if num_objectives > 1:
                points[:, -1] = 6 * (num_objectives - 1) - points[:, :-1].sum(axis=1)
        if trial % 2 and num_points > 2:
            # A few rows with a NaN or an infinity, which must be skipped.
            rows = rng.choice(num_points, size=max(1, num_points // 8), replace=False)
            cols = rng.integers(0, num_objectives, size=len(rows))
            points[rows, cols] = rng.choice([np.nan, np.inf, -np.inf], size=len(rows))
        directions = list(directions_rng.choice(["min", "max"], size=num_objectives))
        expected = front_by_enumeration(points, directions)
        assert pareto_front(points, directions) == expected, (points.tolist(), directions)
        # Flipping every direction is the same as negating every value.
        flipped = ["max" if d == "min" else "min" for d in directions]
        assert pareto_front(-points, flipped) == expected


def test_the_enumerated_front_agrees_with_the_hand_examples(front_by_enumeration):
    # The reference itself, on the hand-worked cases above (so it cannot be
    # wrong the same way as the package everywhere).
    points = [(1, 5), (2, 3), (3, 4), (4, 1), (5, 5), (2, 3.5)]
    assert front_by_enumeration(points, ["min", "min"]) == [0, 1, 3]
    points = [[0.90, 5000], [0.95, 9000], [0.85, 6000], [0.95, 8000], [0.70, 1000]]
    assert front_by_enumeration(points, ["max", "min"]) == [0, 3, 4]
    assert front_by_enumeration([(1, 2), (2, 1), (1, 2), (3, 3)], ["min", "min"]) == [0, 1, 2]
    assert front_by_enumeration([(float("nan"), 0.0), (1.0, 2.0)], ["min", "min"]) == [1]


def test_pareto_front_returns_python_ints():
    front = pareto_front(np.array([[1.0, 2.0]]), ["min", "min"])
    assert type(front[0]) is int


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([1.0, 2.0], "Received: points of shape (2,); expected an (n, k) array"),
        ([[[1.0]]], "Received: points of shape (1, 1, 1); expected an (n, k) array"),
        ([["a", "b"]], "Received: points=[['a', 'b']]; expected an (n, k) array of numbers"),
        ([[1, 2], [3]], "Received: points=[[1, 2], [3]]; expected an (n, k) array of numbers"),
    ],
)
def test_bad_points_are_named(points, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        pareto_front(points, ["min", "min"])
    with pytest.raises(ValueError, match=re.escape(message)):
        hypervolume(points, ["min", "min"], [5, 5])


# hypervolume


def test_hypervolume_2d_staircase():
    points = [(1, 3), (2, 2), (3, 1)]
    assert hypervolume(points, ["min", "min"], [4, 4]) == pytest.approx(6.0)


def _sweep_hypervolume_2d(points, directions, reference):
    """The 2-D area by a sweep written here: strips between consecutive first values."""
    signs = [1.0 if d == "min" else -1.0 for d in directions]
    ref_x, ref_y = reference[0] * signs[0], reference[1] * signs[1]
    inside = sorted(
        (x * signs[0], y * signs[1])
        for x, y in points
        if np.isfinite(x) and np.isfinite(y) and x * signs[0] < ref_x and y * signs[1] < ref_y
    )
    area, lowest_y = 0.0, ref_y
    for x, y in inside:  # by increasing x: each point adds the strip below the best y so far
        if y < lowest_y:
            area += (ref_x - x) * (lowest_y - y)
            lowest_y = y
    return area


def test_hypervolume_2d_hand_computed():
    # Min both, reference (10, 10): (2, 6) gives 8 x 4 = 32; (4, 3) adds 6 x 3 = 18;
    # (7, 1) adds 3 x 2 = 6; (5, 5) and (8, 8) are dominated; (11, 0) is outside.
    points = [(2, 6), (4, 3), (7, 1), (5, 5), (8, 8), (11, 0)]
    assert hypervolume(points, ["min", "min"], [10, 10]) == pytest.approx(56.0)
    assert _sweep_hypervolume_2d(points, ["min", "min"], [10, 10]) == pytest.approx(56.0)


@pytest.mark.parametrize("num_points", [1, 3, 10, 60])
@pytest.mark.parametrize("directions", [("min", "min"), ("max", "min"), ("min", "max"),
                                        ("max", "max")])
def test_hypervolume_2d_matches_a_sweep(num_points, directions):
    rng = np.random.default_rng(num_points)
    for rounded in (False, True):
        points = rng.uniform(0.0, 10.0, size=(num_points, 2))
        if rounded:
            points = np.round(points)  # ties in each objective and duplicate points
        # The reference cuts through the cloud, so some points lie outside it.
        reference = [8.0 if d == "min" else 2.0 for d in directions]
        expected = _sweep_hypervolume_2d(points, directions, reference)
        assert hypervolume(points, list(directions), reference) == pytest.approx(expected)


def test_hypervolume_order_and_dominated_points_do_not_matter():
    points = [(3, 1), (1, 3), (2, 2)]
    assert hypervolume(points, ["min", "min"], [4, 4]) == pytest.approx(6.0)
    with_dominated = points + [(3, 3), (2.5, 2), (1, 3)]
    assert hypervolume(with_dominated, ["min", "min"], [4, 4]) == pytest.approx(6.0)


def test_hypervolume_single_point_is_a_box():
    assert hypervolume([(1, 2)], ["min", "min"], [4, 6]) == pytest.approx(12.0)
    assert hypervolume([(2.0,)], ["min"], [5.0]) == pytest.approx(3.0)


def test_hypervolume_max_min_mix():
    # (accuracy, size): reference accuracy 0.5 and size 10.
    # (0.9, 6) gives the box 0.4 x 4 = 1.6; (0.7, 2) adds 0.2 x (6 - 2) = 0.8.
    points = [(0.9, 6), (0.7, 2)]
    assert hypervolume(points, ["max", "min"], [0.5, 10]) == pytest.approx(2.4)
    # The same problem written as minimization with a negated accuracy.
    negated = [(-0.9, 6), (-0.7, 2)]
    assert hypervolume(negated, ["min", "min"], [-0.5, 10]) == pytest.approx(2.4)


def test_hypervolume_all_maximized():
    points = [(3, 1), (1, 3), (2, 2)]
    # Mirror image of the staircase: reference (0, 0), maximize both.
    assert hypervolume(points, ["max", "max"], [0, 0]) == pytest.approx(6.0)


def test_hypervolume_3d_cube_and_union():
    assert hypervolume([(0, 0, 0)], ["min"] * 3, [2, 2, 2]) == pytest.approx(8.0)
    # (1, 0, 0) is dominated by (0, 0, 0): its box lies inside the cube.
    points = [(0, 0, 0), (1, 0, 0)]
    assert hypervolume(points, ["min"] * 3, [2, 2, 2]) == pytest.approx(8.0)
    points = [(0, 0, 1), (0, 1, 0), (1, 0, 0)]
    # Three 4-unit slabs of the 2-cube; their union leaves only the corner [0, 1]^3 out.
    assert hypervolume(points, ["min"] * 3, [2, 2, 2]) == pytest.approx(7.0)


def test_hypervolume_3d_matches_grid_count():
    rng = np.random.default_rng(1)
    points = rng.integers(0, 8, size=(12, 3)).astype(float)
    reference = np.array([9.0, 9.0, 9.0])
    expected = _brute_force_hypervolume(points, reference, cells=(9, 9, 9))
    assert hypervolume(points, ["min"] * 3, reference) == pytest.approx(expected)
    # Maximizing the negated values is the same problem.
    assert hypervolume(-points, ["max"] * 3, -reference) == pytest.approx(expected)


def test_hypervolume_4d_matches_grid_count():
    rng = np.random.default_rng(2)
    points = rng.integers(0, 4, size=(8, 4)).astype(float)
    reference = np.array([5.0, 5.0, 5.0, 5.0])
    expected = _brute_force_hypervolume(points, reference, cells=(5, 5, 5, 5))
    assert hypervolume(points, ["min"] * 4, reference) == pytest.approx(expected)


def test_hypervolume_points_outside_the_reference_contribute_nothing():
    reference = [4, 4]
    assert hypervolume([(5, 1)], ["min", "min"], reference) == 0.0
    assert hypervolume([(4, 1)], ["min", "min"], reference) == 0.0  # on the boundary
    base = hypervolume([(1, 3), (2, 2)], ["min", "min"], reference)
    assert hypervolume([(1, 3), (2, 2), (5, 0), (0, 4)], ["min", "min"], reference) == base
    # Accuracy below the reference accuracy is outside, whatever its size.
    assert hypervolume([(0.4, 1)], ["max", "min"], [0.5, 10]) == 0.0


def test_hypervolume_ignores_non_finite_rows():
    points = [(1, 3), (float("nan"), 0), (-float("inf"), 0), (2, 2), (3, 1)]
    assert hypervolume(points, ["min", "min"], [4, 4]) == pytest.approx(6.0)


def test_hypervolume_empty_is_zero():
    assert hypervolume([], ["min", "min"], [1, 1]) == 0.0
    assert hypervolume(np.empty((0, 3)), ["min"] * 3, [1, 1, 1]) == 0.0


def test_hypervolume_grows_only_with_a_better_front():
    reference = [0.0, 100.0]
    points = [(0.5, 50.0)]
    before = hypervolume(points, ["max", "min"], reference)
    after = hypervolume(points + [(0.6, 60.0)], ["max", "min"], reference)
    assert after > before
    assert hypervolume(points + [(0.4, 60.0)], ["max", "min"], reference) == before


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ([4], "Received: reference=[4]; expected 2 numbers, one per objective"),
        ([4, 4, 4], "Received: reference=[4, 4, 4]; expected 2 numbers"),
        (["a", 4], "Received: reference=['a', 4]; expected 2 numbers"),
        ([4, float("inf")], "Received: reference=[4, inf]; expected 2 finite numbers."),
        ([float("nan"), 4], "Received: reference=[nan, 4]; expected 2 finite numbers."),
    ],
)
def test_bad_reference_is_named(reference, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        hypervolume([(1, 3)], ["min", "min"], reference)


def test_hypervolume_of_a_few_hundred_3d_points_is_quick():
    rng = np.random.default_rng(3)
    # Points near the sphere: most are on the front, the hard case for slicing.
    raw = rng.normal(size=(300, 3))
    points = np.abs(raw) / np.linalg.norm(raw, axis=1, keepdims=True)
    volume = hypervolume(points, ["min"] * 3, [1.0, 1.0, 1.0])
    # The front of the positive unit sphere octant leaves 1 - pi/6 of the cube.
    assert 0.0 < volume < 1.0 - np.pi / 6
    # A Monte Carlo estimate: the share of uniform samples of the cube that some
    # point dominates (standard error about 0.0035 with 20,000 samples).
    samples = np.random.default_rng(4).uniform(size=(20_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for point in points:
        dominated |= np.all(point <= samples, axis=1)
    assert volume == pytest.approx(dominated.mean(), abs=0.015)
