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
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from keras_autoopt.measure import TFLiteRunner, top1_labels


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
