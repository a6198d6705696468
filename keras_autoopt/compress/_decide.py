"""Accuracy decisions that are honest about noise: paired comparisons of per-sample results.

With 270 validation samples one sample is 0.37 pt and the standard error of a
98 % accuracy is about 0.85 pt, so "the validation accuracy dropped by at most
1 pt" is mostly a coin toss between a compressed model and its baseline. Both
models see the same samples, though: most samples they both get right (or
both wrong), and only the samples where they disagree carry information. The
paired difference ``d_i = baseline_correct_i - candidate_correct_i`` has a
much smaller standard error than two independent accuracies, and its
one-sided upper confidence bound is what `auto_compress` compares with the
budget: a stage is accepted only when the data make a drop beyond the budget
unlikely, not when its point estimate happens to land inside.

The bound uses the normal approximation of the mean of ``d`` (McNemar's
setting), with the variance floored at one discordant sample so that a
candidate identical to its baseline on a small split is not declared exact.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from keras_autoopt.compress._plan import Stage
from keras_autoopt.measure import TFLiteRunner, top1_labels

#: Stages whose figure is within this share of the smallest are near-ties.
NEAR_TIE = 0.02


def check_confidence(name: str, value: object) -> float:
    """``value`` as a confidence level in [0.5, 1).

    Raises:
        ValueError: Naming ``name`` for anything else.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and 0.5 <= value < 1.0
    if not ok:
        raise ValueError(f"Received: {name}={value!r}; expected a confidence level in "
                         "[0.5, 1) (0.5: the point estimate alone).")
    return float(value)


@dataclass(frozen=True)
class PairedDrop:
    """The accuracy a candidate loses against its baseline, on the same samples.

    Attributes:
        drop: Baseline accuracy minus candidate accuracy (a fraction; negative:
            the candidate is better).
        se: Standard error of ``drop`` (paired).
        n: Number of samples.
        worse: Samples the baseline gets right and the candidate wrong.
        better: Samples the candidate gets right and the baseline wrong.
    """

    drop: float
    se: float
    n: int
    worse: int
    better: int

    def upper(self, confidence: float) -> float:
        """One-sided upper confidence bound of the drop (``confidence`` 0.5: ``drop``)."""
        return self.drop + NormalDist().inv_cdf(confidence) * self.se

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided confidence interval of the drop."""
        half = NormalDist().inv_cdf(0.5 + confidence / 2) * self.se
        return self.drop - half, self.drop + half

    def to_dict(self, confidence: float = 0.95) -> dict[str, float | int]:
        """JSON figures: drop, its standard error, counts and the interval."""
        low, high = self.interval(confidence)
        return {"drop": self.drop, "se": self.se, "n": self.n, "worse": self.worse,
                "better": self.better, f"ci{round(100 * confidence)}": [low, high]}


def paired_drop(baseline_correct: np.ndarray, candidate_correct: np.ndarray) -> PairedDrop:
    """Compare two models' per-sample correctness on the same samples.

    Args:
        baseline_correct: Booleans, one per sample, for the baseline.
        candidate_correct: Booleans for the candidate, the same samples in the
            same order.

    Returns:
        The `PairedDrop`.

    Raises:
        ValueError: If the arrays are empty or differ in length.
    """
    base = np.asarray(baseline_correct, dtype=bool).ravel()
    cand = np.asarray(candidate_correct, dtype=bool).ravel()
    if not len(base) or len(base) != len(cand):
        raise ValueError(f"Received: {len(base)} baseline and {len(cand)} candidate results; "
                         "expected the same, non-zero number of samples.")
    n = len(base)
    worse = int(np.sum(base & ~cand))
    better = int(np.sum(~base & cand))
    drop = (worse - better) / n
    # Variance of d_i in {-1, 0, 1}; floored at one discordant sample (see module docstring).
    variance = max(worse + better, 1) / n - drop ** 2
    return PairedDrop(drop=drop, se=math.sqrt(max(variance, 0.0) / n), n=n, worse=worse,
                      better=better)


def tflite_correct(path: str | os.PathLike, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample correctness of an exported ``.tflite`` under LiteRT.

    Args:
        path: The ``.tflite`` file.
        x: Inputs (real values, as the Keras model takes them).
        y: Integer labels.

    Returns:
        Booleans, one per sample: the top-1 class equals the label.
    """
    outputs = TFLiteRunner(path).predict(np.asarray(x))
    return top1_labels(outputs) == np.asarray(y).reshape(-1)


def stage_figure(minimize: str, stage: Stage, device: dict[str, Any] | None) -> float:
    """The figure ``minimize`` names, for one stage (device figures where measured; inf: none)."""
    if minimize == "flash":
        return float(device["flash_bytes"] if device else stage.metrics["size_bytes"])
    if minimize == "gzip":
        return float(stage.metrics["gzip_bytes"])
    if minimize == "latency":
        return float(stage.metrics["latency_us_median"])
    if minimize == "macs":
        return float(stage.metrics["macs"])
    ram = device.get("ram_bytes") if device else None
    return math.inf if ram is None else float(ram)


def choose_stage(stages: list[Stage], within: Callable[[Stage], bool],
                 objective: Callable[[Stage], float], decisions: dict[str, dict[str, Any]],
                 devices: dict[str, dict[str, Any]]) -> Stage:
    """The stage with least ``objective`` among those within budget that run on the target.

    Near-ties (within `NEAR_TIE` of the least) go to the smaller validation drop,
    then the smaller figure, then the fewer gzip bytes (e.g. a magnitude-pruned
    stage as accurate as the structured one it started from, and as large on
    the device). The float32 stage when nothing qualifies.
    """
    candidates = [s for s in stages if within(s)
                  and devices.get(s.name, {}).get("reason") is None] or stages[:1]
    least = min(objective(s) for s in candidates)
    near = [s for s in candidates if objective(s) <= least * (1 + NEAR_TIE)]
    return min(near, key=lambda s: (decisions[s.name]["val"]["drop"], objective(s),
                                    s.metrics["gzip_bytes"]))
